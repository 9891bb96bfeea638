import path from 'node:path';
import { SafetensorsReader } from '@loupe/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../../../../tests/fixtures/index.js';
import { convertedFixture } from '../../../../tests/support/model.js';
import { readManifest } from '../graph/manifest.js';
import { NEURON_LOGIT_TOKENS, NeuronWeights } from './neuron-weights.js';

// Neuron logit tokens and nearest neurons of the converted tiny model (2 layers, d_mlp 256, d_model 64,
// GPT-2's 50,257 tokens) against float64 sums over the Hugging Face checkpoint's own tensors: c_proj
// rows, ln_f's gain and wte. Tolerance 1e-5: each value is a float32 dot product of 64 terms of size
// ~0.01 (logits) or of two unit vectors (cosines), whose rounding error is ~1e-7; 1e-5 is slack that
// still fails any wrong row, wrong layer, missing gain or unnormalised cosine (all change values by
// more than 1e-3). Ids: the exact float64 value of each returned id must equal the value reported
// beside it, so near-ties may come in either order but a wrong id fails.
const TOL = 1e-5;
let weights: NeuronWeights;
let ref: {
  cProj: Float64Array[];
  /** [d_model, d_mlp] per layer, and ln_2's gain per layer */
  cFc: Float64Array[];
  ln2: Float64Array[];
  gain: Float64Array;
  wte: Float64Array;
  vocab: number;
  d: number;
  dMlp: number;
};

beforeAll(async () => {
  const { checkpointDir, modelDir } = await convertedFixture(FIXTURES.tiny);
  const reader = await SafetensorsReader.open(path.join(checkpointDir, 'model.safetensors'));
  const [vocab, d] = reader.info('wte.weight').shape;
  const [dMlp] = reader.info('h.0.mlp.c_proj.weight').shape;
  ref = {
    cProj: [
      Float64Array.from(await reader.readFloat32('h.0.mlp.c_proj.weight')),
      Float64Array.from(await reader.readFloat32('h.1.mlp.c_proj.weight')),
    ],
    cFc: [
      Float64Array.from(await reader.readFloat32('h.0.mlp.c_fc.weight')),
      Float64Array.from(await reader.readFloat32('h.1.mlp.c_fc.weight')),
    ],
    ln2: [
      Float64Array.from(await reader.readFloat32('h.0.ln_2.weight')),
      Float64Array.from(await reader.readFloat32('h.1.ln_2.weight')),
    ],
    gain: Float64Array.from(await reader.readFloat32('ln_f.weight')),
    wte: Float64Array.from(await reader.readFloat32('wte.weight')),
    vocab,
    d,
    dMlp,
  };
  await reader.close();
  weights = await NeuronWeights.open(modelDir, await readManifest(modelDir), {
    device: 'cpu',
    intraOpThreads: 1,
  });
}, 120_000);

afterAll(async () => {
  await weights?.close();
});

function direction(layer: number, n: number): Float64Array {
  return ref.cProj[layer].subarray(n * ref.d, (n + 1) * ref.d);
}

function cosine(a: Float64Array, b: Float64Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

describe('neuron weights', () => {
  it.each([
    [0, 3],
    [1, 200],
    [1, 0],
  ])('layer %i neuron %i: logit tokens are c_proj[n] · diag(ln_f.g) · wteᵀ, both ways', async (layer, n) => {
    const got = await weights.of(layer, n, 10);
    const dir = direction(layer, n);
    const logits = new Float64Array(ref.vocab);
    for (let v = 0; v < ref.vocab; v++) {
      let s = 0;
      for (let i = 0; i < ref.d; i++) s += dir[i] * ref.gain[i] * ref.wte[v * ref.d + i];
      logits[v] = s;
    }
    const sorted = Float64Array.from(logits).sort();
    const top = Array.from(sorted.slice(-NEURON_LOGIT_TOKENS)).reverse();
    const bottom = Array.from(sorted.slice(0, NEURON_LOGIT_TOKENS));
    expect(got.positive).toHaveLength(NEURON_LOGIT_TOKENS);
    expect(got.negative).toHaveLength(NEURON_LOGIT_TOKENS);
    for (let r = 0; r < NEURON_LOGIT_TOKENS; r++) {
      expect(Math.abs(got.positive[r].value - top[r])).toBeLessThan(TOL);
      expect(Math.abs(got.negative[r].value - bottom[r])).toBeLessThan(TOL);
      expect(Math.abs(logits[got.positive[r].id] - got.positive[r].value)).toBeLessThan(TOL);
      expect(Math.abs(logits[got.negative[r].id] - got.negative[r].value)).toBeLessThan(TOL);
    }
  });

  it.each([
    [0, 3],
    [1, 200],
  ])(
    'layer %i neuron %i: nearest neurons by cosine of output directions, in its layer and in all',
    async (layer, n) => {
      const k = 12;
      const got = await weights.of(layer, n, k);
      const self = direction(layer, n);
      const all = [0, 1].flatMap((l) =>
        Array.from({ length: ref.dMlp }, (_, m) => ({
          layer: l,
          neuron: m,
          cosine: cosine(self, direction(l, m)),
        })),
      );
      const others = all
        .filter((x) => !(x.layer === layer && x.neuron === n))
        .sort((a, b) => b.cosine - a.cosine);
      const sameLayer = others.filter((x) => x.layer === layer);
      const exact = (x: { layer: number; neuron: number }) => cosine(self, direction(x.layer, x.neuron));
      for (const [list, expected] of [
        [got.nearestInLayer, sameLayer],
        [got.nearestInModel, others],
      ] as const) {
        expect(list).toHaveLength(k);
        for (let r = 0; r < k; r++) {
          expect(Math.abs(list[r].cosine - expected[r].cosine)).toBeLessThan(TOL);
          expect(Math.abs(exact(list[r]) - list[r].cosine)).toBeLessThan(TOL);
          expect(list[r]).not.toMatchObject({ layer, neuron: n });
        }
      }
      expect(got.nearestInLayer.every((x) => x.layer === layer)).toBe(true);
    },
  );

  /** c_fc(layer).w[:, n] · diag(h.layer.ln_2.g): what a neuron reads from the residual stream */
  function inputDirection(layer: number, n: number): Float64Array {
    return Float64Array.from(
      { length: ref.d },
      (_, i) => ref.cFc[layer][i * ref.dMlp + n] * ref.ln2[layer][i],
    );
  }
  const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i], 0);

  it.each([
    [0, 3],
    [1, 200],
  ])('layer %i neuron %i: input tokens are wte · diag(ln_2.g) · c_fc[:, n], both ways', async (layer, n) => {
    const got = await weights.of(layer, n, 10);
    const dir = inputDirection(layer, n);
    const values = Float64Array.from({ length: ref.vocab }, (_, v) =>
      dot(dir, ref.wte.subarray(v * ref.d, (v + 1) * ref.d)),
    );
    const sorted = Float64Array.from(values).sort();
    for (let r = 0; r < NEURON_LOGIT_TOKENS; r++) {
      expect(Math.abs(got.inputPositive[r].value - sorted[ref.vocab - 1 - r])).toBeLessThan(TOL);
      expect(Math.abs(got.inputNegative[r].value - sorted[r])).toBeLessThan(TOL);
      expect(Math.abs(values[got.inputPositive[r].id] - got.inputPositive[r].value)).toBeLessThan(TOL);
      expect(Math.abs(values[got.inputNegative[r].id] - got.inputNegative[r].value)).toBeLessThan(TOL);
    }
  });

  it('connections are c_proj(l1)[n1] · diag(ln_2(l2).g) · c_fc(l2)[:, n2], upstream and downstream', async () => {
    const k = 8;
    // layer 0 neuron 3 writes into layer 1; layer 1 neuron 200 reads from layer 0
    const down = await weights.of(0, 3, k);
    const up = await weights.of(1, 200, k);
    const into = (l1: number, n1: number, l2: number, n2: number) =>
      dot(direction(l1, n1), inputDirection(l2, n2));
    const cases = [
      [down.downstream, Array.from({ length: ref.dMlp }, (_, m) => into(0, 3, 1, m)), 1],
      [up.upstream, Array.from({ length: ref.dMlp }, (_, m) => into(0, m, 1, 200)), 0],
    ] as const;
    for (const [got, weightsOf, otherLayer] of cases) {
      const sorted = [...weightsOf].sort((a, b) => a - b);
      for (const [side, expected] of [
        ['positive', sorted.slice(-k).reverse()],
        ['negative', sorted.slice(0, k)],
      ] as const) {
        expect(got[side]).toHaveLength(k);
        for (const [r, c] of got[side].entries()) {
          expect(c.layer).toBe(otherLayer);
          expect(Math.abs(c.weight - expected[r])).toBeLessThan(TOL);
          expect(Math.abs(weightsOf[c.neuron] - c.weight)).toBeLessThan(TOL);
        }
      }
    }
    // nothing comes before layer 0 or after the last layer
    expect(down.upstream).toEqual({ positive: [], negative: [] });
    expect(up.downstream).toEqual({ positive: [], negative: [] });
  });

  it('refuses neurons, layers and k outside the model, saying what exists', async () => {
    await expect(weights.of(0, 256, 10)).rejects.toThrow(
      /neuron 256 does not exist: layers have neurons 0-255/,
    );
    await expect(weights.of(2, 0, 10)).rejects.toThrow(/layer 2 does not exist: the model has layers 0-1/);
    await expect(weights.of(0, 0, 256)).rejects.toThrow(/k must be 1-255/);
  });
});
