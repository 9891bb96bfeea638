import { allHooks, Rng } from '@loupe/common';
import { type FeatureClamp, Gpt2Runner, generatePair } from '@loupe/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { loadReferenceModel, type ReferenceModel, referenceForward } from '../reference/gpt2-reference.js';
import { convertedFixture, flatten, maxAbsDiff } from '../support/model.js';

// Feature clamps in the ONNX graph (float32) against the float64 reference with the clamp written out
// by hand at blocks.L.hook_resid_pre: x' = x + (c − act(x))·d, act = pre if pre > threshold else 0,
// pre = x·e + bias. Same 1e-4 bound as the exactness tests.
const TOLERANCE = 1e-4;
const TEXT = 'The quick brown fox jumps over the lazy dog.';

function randomClamp(rng: Rng, layer: number, d: number, fields: Partial<FeatureClamp>): FeatureClamp {
  return {
    layer,
    encoder: Float32Array.from({ length: d }, () => rng.nextNormal() * 0.3),
    decoder: Float32Array.from({ length: d }, () => rng.nextNormal() * 0.2),
    bias: 0,
    threshold: 0,
    value: 3,
    ...fields,
  };
}

/** The clamp in float64, as the reference's resid_pre edit. */
function clampByHand(clamps: FeatureClamp[]) {
  return (layer: number, rows: Float64Array[]) =>
    rows.map((x) => {
      const out = Float64Array.from(x);
      for (const c of clamps.filter((k) => k.layer === layer)) {
        let pre = c.bias;
        for (let i = 0; i < x.length; i++) pre += x[i] * c.encoder[i];
        const act = pre > c.threshold ? pre : 0;
        for (let i = 0; i < x.length; i++) out[i] += (c.value - act) * c.decoder[i];
      }
      return out;
    });
}

describe('feature clamps in the graph (tiny GPT-2)', () => {
  let runner: Gpt2Runner;
  let reference: ReferenceModel;
  let hooks: string[];
  let ids: number[];

  beforeAll(async () => {
    const { checkpointDir, modelDir } = await convertedFixture(FIXTURES.tiny);
    runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
    reference = await loadReferenceModel(checkpointDir);
    hooks = allHooks(runner.manifest.dims.nLayer);
    ids = runner.tokenizer.encode(TEXT);
  });
  afterAll(() => runner?.close());

  it('clamps (ReLU and JumpReLU, two features on one layer, with steering) as the float64 reference does', async () => {
    const { dModel: d } = runner.manifest.dims;
    const rng = new Rng(7);
    const jump = randomClamp(rng, 1, d, { value: 1.5 });
    const clamps = [
      randomClamp(rng, 1, d, { bias: 0.1, value: 4 }),
      jump,
      randomClamp(rng, 0, d, { bias: -0.2, value: 0 }),
    ];
    const steer = Float32Array.from({ length: d }, (_, i) => Math.cos(i));
    // the JumpReLU threshold splits the positions where the feature is positive, so some fall below it
    const before = referenceForward(reference, ids, {
      steering: new Map([[1, Float64Array.from(steer, (v) => v * 0.5)]]),
      editResidPre: (layer, rows) => (layer === 0 ? clampByHand([clamps[2]])(0, rows) : rows),
    }).hooks.get('blocks.1.hook_resid_pre')!;
    const positive = before
      .map((x) => x.reduce((sum, v, i) => sum + v * jump.encoder[i], 0))
      .filter((pre) => pre > 0)
      .sort((a, b) => a - b);
    expect(positive.length).toBeGreaterThan(1);
    const middle = Math.floor(positive.length / 2);
    jump.threshold = (positive[middle - 1] + positive[middle]) / 2;
    const [plain] = await runner.forward([{ ids, hooks, logits: true }]);
    const [clamped] = await runner.forward([
      { ids, hooks, logits: true, clamps, steering: [{ layer: 1, vector: steer, strength: 0.5 }] },
    ]);
    const expected = referenceForward(reference, ids, {
      steering: new Map([[1, Float64Array.from(steer, (v) => v * 0.5)]]),
      editResidPre: clampByHand(clamps),
    });
    for (const hook of hooks) {
      expect(maxAbsDiff(clamped.hooks.get(hook)!, flatten(expected.hooks.get(hook)!)), hook).toBeLessThan(
        TOLERANCE,
      );
    }
    expect(maxAbsDiff(clamped.logits!, flatten(expected.logits))).toBeLessThan(TOLERANCE);
    // the clamp did something (else the comparison above proves little)
    expect(maxAbsDiff(clamped.logits!, plain.logits!)).toBeGreaterThan(1e-2);
  });

  it('ablating a feature that never fires changes nothing, bit for bit; unclamped rows of a batch are untouched', async () => {
    const { dModel: d } = runner.manifest.dims;
    const rng = new Rng(8);
    const silent = randomClamp(rng, 1, d, { bias: -1e4, value: 0 });
    const active = randomClamp(rng, 1, d, { bias: 0.3, value: 5 });
    const [plain] = await runner.forward([{ ids, hooks, logits: true }]);
    const [ablated] = await runner.forward([{ ids, hooks, logits: true, clamps: [silent] }]);
    expect(maxAbsDiff(ablated.logits!, plain.logits!)).toBe(0);
    for (const hook of hooks)
      expect(maxAbsDiff(ablated.hooks.get(hook)!, plain.hooks.get(hook)!), hook).toBe(0);

    const shorter = ids.slice(0, 5);
    const [alone] = await runner.forward([{ ids, hooks: [], logits: true, clamps: [active] }]);
    const [plainShort] = await runner.forward([{ ids: shorter, hooks: [], logits: true }]);
    const batch = await runner.forward([
      { ids, hooks: [], logits: true, clamps: [active] },
      { ids: shorter, hooks: [], logits: true },
    ]);
    expect(maxAbsDiff(batch[0].logits!, alone.logits!)).toBeLessThan(1e-5);
    expect(maxAbsDiff(batch[1].logits!, plainShort.logits!)).toBeLessThan(1e-5);
    expect(maxAbsDiff(alone.logits!, plain.logits!)).toBeGreaterThan(1e-2);
  });

  it('clamped greedy generation follows the reference token by token', async () => {
    const { dModel: d, nPositions, vocabSize } = runner.manifest.dims;
    const clamp = randomClamp(new Rng(9), 1, d, { bias: 0.2, value: 6 });
    const prompt = ids.slice(0, 4);
    const pair = await generatePair(
      (rows) => runner.decoder(rows),
      prompt,
      {
        maxTokens: 6,
        temperature: 0,
        topK: 0,
        seed: 1,
        steering: [],
        clamps: [clamp],
        stopAtEndOfText: false,
      },
      { nPositions, vocabSize, endOfTextId: null, maxNewTokens: 64 },
    );
    const expected: number[] = [];
    const sequence = [...prompt];
    for (let step = 0; step < 6; step++) {
      const { logits } = referenceForward(reference, sequence, { editResidPre: clampByHand([clamp]) });
      const last = logits.at(-1)!;
      const next = last.indexOf(Math.max(...last));
      expected.push(next);
      sequence.push(next);
    }
    expect(pair.steered.ids).toEqual(expected);
    expect(pair.steered.ids).not.toEqual(pair.unsteered.ids);
  });

  it('refuses a clamp of the wrong width or at a layer that does not exist', async () => {
    const { dModel: d, nLayer } = runner.manifest.dims;
    const bad = randomClamp(new Rng(1), 0, d - 1, {});
    await expect(runner.forward([{ ids, hooks: [], logits: true, clamps: [bad] }])).rejects.toThrow(
      /need d_model = 64 values/,
    );
    const missing = randomClamp(new Rng(1), nLayer, d, {});
    await expect(runner.forward([{ ids, hooks: [], logits: true, clamps: [missing] }])).rejects.toThrow(
      /layer 2 does not exist/,
    );
  });
});
