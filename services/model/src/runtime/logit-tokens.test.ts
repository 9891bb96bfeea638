import path from 'node:path';
import { Rng, SafetensorsReader } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { FIXTURES } from '../../../../tests/fixtures/index.js';
import { convertedFixture } from '../../../../tests/support/model.js';
import { readUnembedding } from '../graph/unembedding.js';
import { computeLogitTokens } from './logit-tokens.js';

// Logit tokens through the converted tiny model's unembedding (957 tokens, d_model 48), against a
// float64 matmul over wte read straight from the Hugging Face checkpoint.

describe('logit tokens', () => {
  it('are the top and bottom tokens of W_dec[f] · wteᵀ, in chunks of features', async () => {
    const { checkpointDir, modelDir } = await convertedFixture(FIXTURES.tinyOwnBpe);
    const reader = await SafetensorsReader.open(path.join(checkpointDir, 'model.safetensors'));
    const wte = await reader.readFloat32('wte.weight');
    const [vocab, d] = reader.info('wte.weight').shape;
    await reader.close();

    const unembedding = await readUnembedding(modelDir);
    expect(unembedding).toMatchObject({ vocabSize: vocab, dModel: d, tied: true });
    expect(unembedding.weights).toEqual(wte);

    const features = 70; // two chunks of 32 and a partial one
    const decoder = Rng.derive(4, 'test/logit-decoder').normalFloat32(features * d, 0, 1);
    const count = 10;
    const progress: number[] = [];
    const got = await computeLogitTokens(decoder, d, unembedding, {
      device: 'cpu',
      intraOpThreads: 1,
      chunk: 32,
      onProgress: (done) => progress.push(done),
    });
    expect(progress).toEqual([32, 64, 70]);
    for (let f = 0; f < features; f++) {
      const logits = new Float64Array(vocab);
      for (let v = 0; v < vocab; v++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += decoder[f * d + j] * wte[v * d + j];
        logits[v] = s;
      }
      const sorted = Float64Array.from(logits).sort();
      const top = Array.from(sorted.slice(-count)).reverse();
      const bottom = Array.from(sorted.slice(0, count));
      // values: float32 dot products of 48 O(0.1) terms agree with float64 to ~1e-6; 1e-4 is slack.
      // ids: each returned id's exact logit must equal the value reported beside it, so a wrong id
      // fails while near-ties may come in either order.
      for (let r = 0; r < count; r++) {
        const at = f * count + r;
        expect(Math.abs(got.positiveValues[at] - top[r])).toBeLessThan(1e-4);
        expect(Math.abs(got.negativeValues[at] - bottom[r])).toBeLessThan(1e-4);
        expect(Math.abs(logits[got.positiveIds[at]] - got.positiveValues[at])).toBeLessThan(1e-4);
        expect(Math.abs(logits[got.negativeIds[at]] - got.negativeValues[at])).toBeLessThan(1e-4);
      }
      expect(new Set(got.positiveIds.subarray(f * count, (f + 1) * count)).size).toBe(count);
    }
  }, 60_000);

  it('refuse decoders outside the residual stream', async () => {
    const unembedding = { vocabSize: 5, dModel: 4, weights: new Float32Array(20), tied: true };
    await expect(
      computeLogitTokens(new Float32Array(6), 3, unembedding, {
        device: 'cpu',
        intraOpThreads: 1,
        subject: 'this SAE',
      }),
    ).rejects.toThrow(/d_in = d_model 4\); this SAE has d_in 3/);
  });
});
