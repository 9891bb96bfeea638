import {
  activationPatching,
  directLogitAttribution,
  Gpt2Runner,
  logitLens,
  type PatchSweepHook,
} from '@loupe/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { loadReferenceModel, type ReferenceModel, referenceForward } from '../reference/gpt2-reference.js';
import { convertedFixture } from '../support/model.js';

// The experiments (ONNX, float32) against the same experiments computed from the float64 reference's
// forward pass and weights, written out here without the library's code. 1e-4 as everywhere: these are
// sums of a few hooks' products with weights, each within the exactness tests' bound.
const TOLERANCE = 1e-4;

function layerNorm(x: Float64Array, weight: Float64Array, bias: Float64Array, eps: number): Float64Array {
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * weight[i] + bias[i]);
}

function unembedRow(model: ReferenceModel, id: number): Float64Array {
  const d = model.config.nEmbd;
  return model.unembed.subarray(id * d, (id + 1) * d);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

describe('experiments on the tiny GPT-2 against the float64 reference', () => {
  let runner: Gpt2Runner;
  let model: ReferenceModel;

  beforeAll(async () => {
    const { checkpointDir, modelDir } = await convertedFixture(FIXTURES.tiny);
    runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
    model = await loadReferenceModel(checkpointDir);
  });
  afterAll(() => runner?.close());

  it('logit lens: each layer’s top tokens and the chosen token’s probability and rank', async () => {
    const ids = runner.tokenizer.encode('The capital of France is');
    const token = runner.tokenizer.encode(' Paris')[0];
    const lens = await logitLens(runner, ids, { topK: 3, token });
    const ref = referenceForward(model, ids);
    const { nLayer } = model.config;
    expect(lens.top).toHaveLength(nLayer);
    for (let layer = 0; layer < nLayer; layer++) {
      for (let p = 0; p < ids.length; p++) {
        const normalized = layerNorm(
          ref.hooks.get(`blocks.${layer}.hook_resid_post`)![p],
          model.lnFinalWeight,
          model.lnFinalBias,
          model.config.layerNormEpsilon,
        );
        const logits = Array.from({ length: model.config.vocabSize }, (_, v) =>
          dot(normalized, unembedRow(model, v)),
        );
        const max = Math.max(...logits);
        const total = logits.reduce((a, l) => a + Math.exp(l - max), 0);
        const prob = (v: number) => Math.exp(logits[v] - max) / total;
        const [best] = lens.top[layer][p];
        // the top token is the reference's best up to float32 ties
        expect(prob(best.id)).toBeCloseTo(Math.max(...logits.map((_, v) => prob(v))), 5);
        for (const entry of lens.top[layer][p])
          expect(Math.abs(entry.probability - prob(entry.id))).toBeLessThan(TOLERANCE);
        const mine = prob(token);
        expect(Math.abs(lens.chosen!.probability[layer][p] - mine)).toBeLessThan(TOLERANCE);
        const above = logits.filter((_, v) => prob(v) > mine + 1e-6).length;
        const near = logits.filter((_, v) => Math.abs(prob(v) - mine) <= 1e-6).length;
        expect(lens.chosen!.rank[layer][p]).toBeGreaterThanOrEqual(above);
        expect(lens.chosen!.rank[layer][p]).toBeLessThan(above + near);
      }
    }
    // the last layer's lens is the model's own prediction
    expect(lens.top[nLayer - 1][ids.length - 1][0].id).toBe(
      ref.logits.at(-1)!.indexOf(Math.max(...ref.logits.at(-1)!)),
    );
  });

  it('direct logit attribution: every head, MLP, bias and the embeddings, summing to the logit difference', async () => {
    const ids = runner.tokenizer.encode('When Mary and John went to the store, John gave a drink to');
    const [token, wrong] = [runner.tokenizer.encode(' Mary')[0], runner.tokenizer.encode(' John')[0]];
    const dla = await directLogitAttribution(runner, ids, token, wrong);
    const ref = referenceForward(model, ids);
    const { nLayer, nHead, nEmbd: d, layerNormEpsilon } = model.config;
    const dHead = d / nHead;
    const last = ids.length - 1;
    const direction = unembedRow(model, token).map(
      (u, i) => (u - unembedRow(model, wrong)[i]) * model.lnFinalWeight[i],
    );
    const final = ref.hooks.get(`blocks.${nLayer - 1}.hook_resid_post`)![last];
    const mean = (x: ArrayLike<number>) => Array.from(x).reduce((a, b) => a + b, 0) / x.length;
    const sigma = Math.sqrt(mean(final.map((v) => (v - mean(final)) ** 2)) + layerNormEpsilon);
    const read = (x: Float64Array) =>
      dot(
        x.map((v) => v - mean(x)),
        direction,
      ) / sigma;
    for (let layer = 0; layer < nLayer; layer++) {
      const { attnProjWeight: wO, attnProjBias: bO } = model.layers[layer];
      const z = ref.hooks.get(`blocks.${layer}.attn.hook_z`)![last];
      for (let h = 0; h < nHead; h++) {
        const out = new Float64Array(d);
        for (let c = h * dHead; c < (h + 1) * dHead; c++)
          for (let j = 0; j < d; j++) out[j] += z[c] * wO[c * d + j];
        expect(Math.abs(dla.heads[layer][h] - read(out)), `L${layer}H${h}`).toBeLessThan(TOLERANCE);
      }
      expect(Math.abs(dla.attentionBiases[layer] - read(bO))).toBeLessThan(TOLERANCE);
      expect(
        Math.abs(dla.mlps[layer] - read(ref.hooks.get(`blocks.${layer}.hook_mlp_out`)![last])),
      ).toBeLessThan(TOLERANCE);
    }
    const logitDiff = ref.logits[last][token] - ref.logits[last][wrong];
    expect(Math.abs(dla.logit - logitDiff)).toBeLessThan(TOLERANCE);
    const total =
      dla.heads.flat().reduce((a, b) => a + b, 0) +
      dla.mlps.reduce((a, b) => a + b, 0) +
      dla.attentionBiases.reduce((a, b) => a + b, 0) +
      dla.embed +
      dla.lnBias;
    expect(Math.abs(total - logitDiff)).toBeLessThan(TOLERANCE);
  });

  const SWEEPS: [PatchSweepHook, string][] = [
    ['resid_pre', 'hook_resid_pre'],
    ['attn_out', 'hook_attn_out'],
    ['mlp_out', 'hook_mlp_out'],
    ['z', 'attn.hook_z'],
  ];
  for (const [hook, tlName] of SWEEPS) {
    it(`activation patching over ${hook}: every cell as the reference's patched run`, async () => {
      // short, so that the reference's every patched run (full logits in float64) stays quick
      const clean = runner.tokenizer.encode('Mary met John, John thanked');
      const corrupted = runner.tokenizer.encode('Mary met John, Mary thanked');
      expect(clean).toHaveLength(corrupted.length);
      const [answer, wrong] = [runner.tokenizer.encode(' Mary')[0], runner.tokenizer.encode(' John')[0]];
      const result = await activationPatching(runner, { clean, corrupted, answer, wrong, hook });
      const { nLayer, nHead, nEmbd: d } = model.config;
      const dHead = d / nHead;
      const last = clean.length - 1;
      const diffOf = (logits: Float64Array[]) => logits[last][answer] - logits[last][wrong];
      const cleanRef = referenceForward(model, clean);
      const cleanDiff = diffOf(cleanRef.logits);
      const corruptedDiff = diffOf(referenceForward(model, corrupted).logits);
      expect(Math.abs(result.cleanDiff - cleanDiff)).toBeLessThan(TOLERANCE);
      expect(Math.abs(result.corruptedDiff - corruptedDiff)).toBeLessThan(TOLERANCE);
      const columns = hook === 'z' ? nHead : clean.length;
      expect(result.scores).toHaveLength(nLayer);
      for (let layer = 0; layer < nLayer; layer++) {
        const name = `blocks.${layer}.${tlName}`;
        const cleanValue = cleanRef.hooks.get(name)!;
        expect(result.scores[layer]).toHaveLength(columns);
        for (let column = 0; column < columns; column++) {
          const patched = referenceForward(model, corrupted, {
            editHook: (hookName, value) => {
              if (hookName !== name) return value;
              return value.map((row, p) => {
                if (hook !== 'z') return p === column ? Float64Array.from(cleanValue[p]) : row;
                const out = Float64Array.from(row);
                out.set(cleanValue[p].subarray(column * dHead, (column + 1) * dHead), column * dHead);
                return out;
              });
            },
          });
          const want = diffOf(patched.logits);
          expect(Math.abs(result.diffs[layer][column] - want), `${name} ${column}`).toBeLessThan(TOLERANCE);
          const score = result.scores[layer][column]!;
          expect(Math.abs(score - (want - corruptedDiff) / (cleanDiff - corruptedDiff))).toBeLessThan(1e-3);
        }
      }
      // patching the whole residual stream at the last layer's input of the differing token restores
      // the clean run for resid_pre at layer 0 (only that position differs)
      if (hook === 'resid_pre') {
        const differing = clean.findIndex((id, p) => id !== corrupted[p]);
        expect(result.scores[0][differing]).toBeCloseTo(1, 3);
      }
    });
  }

  it('refuses prompts of different lengths and multi-token answers', async () => {
    const clean = runner.tokenizer.encode('When Mary and John went');
    await expect(
      activationPatching(runner, {
        clean,
        corrupted: clean.slice(1),
        answer: 1,
        wrong: 2,
        hook: 'resid_pre',
      }),
    ).rejects.toThrow(/same token length: 5 vs 4 tokens/);
    await expect(
      activationPatching(runner, {
        clean,
        corrupted: clean,
        answer: 1,
        wrong: 2,
        hook: 'embed' as PatchSweepHook,
      }),
    ).rejects.toThrow(/hook must be one of resid_pre, attn_out, mlp_out, z/);
    const long = Array.from({ length: 65 }, (_, i) => 100 + i);
    await expect(
      activationPatching(runner, { clean: long, corrupted: long, answer: 1, wrong: 2, hook: 'resid_pre' }),
    ).rejects.toThrow(/at most 64 tokens; these have 65/);
  });
});
