import { allHooks } from '@loupe/common';
import { Gpt2Runner } from '@loupe/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, type FixtureSpec } from '../fixtures/index.js';
import { loadReferenceModel, type ReferenceModel, referenceForward } from '../reference/gpt2-reference.js';
import { convertedFixture, flatten, maxAbsDiff } from '../support/model.js';

// The converted ONNX graph (float32) against the independent float64 reference, on every hook and the
// logits. 1e-4 is the bound; float32 rounding over these widths (≤ 256) accounts for ~1e-6.
const TOLERANCE = 1e-4;

const TEXTS = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog.',
  // longer than 64 tokens, so positions past 64 and long attention rows are exercised
  'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the season of Darkness, it was the spring of hope, it was the winter of despair, we had everything before us, we had nothing before us.',
  'naïve café 東京 🤗',
];

function checkAgainstReference(spec: FixtureSpec) {
  let runner: Gpt2Runner;
  let reference: ReferenceModel;
  let hooks: string[];

  beforeAll(async () => {
    const { checkpointDir, modelDir } = await convertedFixture(spec);
    runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
    reference = await loadReferenceModel(checkpointDir);
    hooks = allHooks(runner.manifest.dims.nLayer);
  });
  afterAll(() => runner?.close());

  it('matches the float64 reference on every hook and the logits, alone and in a padded batch', async () => {
    const inputs = TEXTS.map((text) => runner.tokenizer.encode(text));
    expect(Math.max(...inputs.map((ids) => ids.length))).toBeGreaterThan(64);
    const batched = await runner.forward(inputs.map((ids) => ({ ids, hooks, logits: true })));
    for (const [i, ids] of inputs.entries()) {
      const [alone] = await runner.forward([{ ids, hooks, logits: true }]);
      const expected = referenceForward(reference, ids);
      for (const hook of hooks) {
        const want = flatten(expected.hooks.get(hook)!);
        expect(maxAbsDiff(alone.hooks.get(hook)!, want), `${spec.name} text ${i} ${hook}`).toBeLessThan(
          TOLERANCE,
        );
        expect(
          maxAbsDiff(batched[i].hooks.get(hook)!, want),
          `${spec.name} text ${i} ${hook} (padded batch)`,
        ).toBeLessThan(TOLERANCE);
      }
      const logits = flatten(expected.logits);
      expect(maxAbsDiff(alone.logits!, logits), `${spec.name} text ${i} logits`).toBeLessThan(TOLERANCE);
      expect(
        maxAbsDiff(batched[i].logits!, logits),
        `${spec.name} text ${i} logits (padded batch)`,
      ).toBeLessThan(TOLERANCE);
    }
  });

  it('steering at blocks.L.hook_resid_pre changes every later hook exactly as the reference says', async () => {
    const { nLayer, dModel } = runner.manifest.dims;
    const layer = nLayer - 1;
    const vector = Float32Array.from({ length: dModel }, (_, i) => Math.sin(i + 1));
    const strength = 2.5;
    const ids = runner.tokenizer.encode(TEXTS[1]);
    const [plain] = await runner.forward([{ ids, hooks, logits: true }]);
    const [steered] = await runner.forward([
      { ids, hooks, logits: true, steering: [{ layer, vector, strength }] },
    ]);
    const expected = referenceForward(reference, ids, {
      steering: new Map([[layer, Float64Array.from(vector, (v) => v * strength)]]),
    });
    const firstSteered = hooks.indexOf(`blocks.${layer}.hook_resid_pre`);
    for (const [index, hook] of hooks.entries()) {
      const got = steered.hooks.get(hook)!;
      expect(maxAbsDiff(got, flatten(expected.hooks.get(hook)!)), `steered ${hook}`).toBeLessThan(TOLERANCE);
      const moved = maxAbsDiff(got, plain.hooks.get(hook)!);
      if (index < firstSteered) expect(moved, `${hook} is upstream of the steering`).toBe(0);
      else expect(moved, `${hook} is downstream of the steering`).toBeGreaterThan(1e-3);
    }
    expect(maxAbsDiff(steered.logits!, flatten(expected.logits))).toBeLessThan(TOLERANCE);
  });
}

describe('tiny GPT-2 with the real vocabulary', () => checkAgainstReference(FIXTURES.tiny));
describe('tiny GPT-2 with its own BPE', () => checkAgainstReference(FIXTURES.tinyOwnBpe));
