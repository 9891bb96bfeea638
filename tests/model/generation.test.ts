import { Rng } from '@loupe/common';
import { type FeatureClamp, Gpt2Runner, generatePair, RecomputingDecoder } from '@loupe/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { loadReferenceModel, type ReferenceModel, referenceForward } from '../reference/gpt2-reference.js';
import { convertedFixture, maxAbsDiff } from '../support/model.js';

// Generation over model.onnx's key/value cache: each step's logits against the float64 reference run
// on the whole sequence so far (same 1e-4 bound as the exactness tests), and whole continuations
// against the cache-free decoder that recomputes every position.
const TOLERANCE = 1e-4;
const PROMPT = 'Once upon a time, in a land far away,';

describe('generation with a key/value cache (tiny GPT-2)', () => {
  let runner: Gpt2Runner;
  let reference: ReferenceModel;
  let prompt: number[];

  beforeAll(async () => {
    const { checkpointDir, modelDir } = await convertedFixture(FIXTURES.tiny);
    runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
    reference = await loadReferenceModel(checkpointDir);
    prompt = runner.tokenizer.encode(PROMPT);
  });
  afterAll(() => runner?.close());

  it('gives at every step the logits the reference computes over the whole sequence, steered and not', async () => {
    const { dModel: d, vocabSize } = runner.manifest.dims;
    const rng = new Rng(11);
    const vector = Float32Array.from({ length: d }, () => rng.nextNormal());
    const steering = [{ layer: 1, vector, strength: 2 }];
    const decoder = await runner.decoder([
      { steering, clamps: [] },
      { steering: [], clamps: [] },
    ]);
    const sequences = [[...prompt], [...prompt]];
    let logits = await decoder.step(sequences.map((s) => [...s]));
    for (let step = 0; step < 5; step++) {
      for (const [row, sequence] of sequences.entries()) {
        const expected = referenceForward(reference, sequence, {
          steering: row === 0 ? new Map([[1, Float64Array.from(vector, (v) => v * 2)]]) : undefined,
        }).logits;
        const last = expected[sequence.length - 1];
        expect(maxAbsDiff(logits[row], last), `row ${row} step ${step}`).toBeLessThan(TOLERANCE);
      }
      // different tokens per row: the cache must keep the rows apart
      const next = [(step * 37 + 5) % vocabSize, (step * 53 + 900) % vocabSize];
      for (const [row, id] of next.entries()) sequences[row].push(id);
      logits = await decoder.step(next.map((id) => [id]));
    }
  });

  it('samples the same continuations as recomputing every position, with steering and clamps', async () => {
    const { dModel: d, nPositions, vocabSize } = runner.manifest.dims;
    const rng = new Rng(3);
    const clamp: FeatureClamp = {
      layer: 1,
      encoder: Float32Array.from({ length: d }, () => rng.nextNormal() * 0.3),
      decoder: Float32Array.from({ length: d }, () => rng.nextNormal() * 0.2),
      bias: 0,
      threshold: 0,
      value: 2,
    };
    const options = {
      maxTokens: 24,
      temperature: 0.9,
      topK: 40,
      seed: 5,
      steering: [{ layer: 0, vector: Float32Array.from({ length: d }, () => rng.nextNormal()), strength: 1 }],
      clamps: [clamp],
      stopAtEndOfText: false,
    };
    const limits = { nPositions, vocabSize, endOfTextId: null, maxNewTokens: 64 };
    const cached = await generatePair((rows) => runner.decoder(rows), prompt, options, limits);
    const recomputed = await generatePair(
      async (rows) => new RecomputingDecoder((requests) => runner.forward(requests), rows, vocabSize),
      prompt,
      options,
      limits,
    );
    expect(cached.steered.ids).toEqual(recomputed.steered.ids);
    expect(cached.unsteered.ids).toEqual(recomputed.unsteered.ids);
    expect(cached.steered.ids).not.toEqual(cached.unsteered.ids);
    expect(cached.steered.ids).toHaveLength(24);
    expect(maxAbsDiff(cached.steered.logprobs, recomputed.steered.logprobs)).toBeLessThan(TOLERANCE);
    expect(maxAbsDiff(cached.unsteered.logprobs, recomputed.unsteered.logprobs)).toBeLessThan(TOLERANCE);
  });

  it('stops between forward passes when its signal is aborted', async () => {
    const { nPositions, vocabSize } = runner.manifest.dims;
    const controller = new AbortController();
    let steps = 0;
    const counting = async (rows: Parameters<typeof runner.decoder>[0]) => {
      const decoder = await runner.decoder(rows);
      return {
        step: (ids: number[][]) => {
          if (++steps === 3) controller.abort(new Error('the caller went away'));
          return decoder.step(ids);
        },
      };
    };
    const options = {
      maxTokens: 50,
      temperature: 0,
      topK: 0,
      seed: 1,
      steering: [],
      stopAtEndOfText: false,
      signal: controller.signal,
    };
    await expect(
      generatePair(counting, prompt, options, { nPositions, vocabSize, endOfTextId: null, maxNewTokens: 64 }),
    ).rejects.toThrow(/the caller went away/);
    expect(steps).toBe(3);
  });
});
