import { describe, expect, it } from 'vitest';
import { bestCosines, syntheticBenchmark } from '../../testing/synthetic.js';
import { SaeTrainer } from './sae-trainer.js';

/**
 * The honest quality test: data made of sparse positive combinations of a hidden dictionary of
 * 512 unit directions in 64 dimensions (Bernoulli(4/512) per direction, so ~4 active, coefficients in
 * [0.5, 1.5], noise std 0.01 per coordinate). A TopK SAE must find ≥ 90% of the directions with a decoder
 * row at cosine > 0.9. Width 768 (1.5× the dictionary) and k = 6 (headroom over the Poisson(4) count);
 * measured at the time of writing: 98% recovered after 400 steps, 100% after 600, ~12 s for 500 steps on
 * 2 cores.
 */
describe('TopK SAE on a synthetic sparse dictionary', () => {
  it('recovers at least 90% of the hidden directions at cosine > 0.9', async () => {
    const d = 64;
    const batch = 1024;
    const { dictionary, source } = syntheticBenchmark(d);
    const trainer = await SaeTrainer.create(
      {
        shape: { d, m: 768 },
        architecture: { kind: 'topk', k: 6 },
        seed: 3,
        device: 'cpu',
        intraOpThreads: 2,
      },
      source.batch(batch),
      batch,
    );
    const started = performance.now();
    let first = 0;
    let last = 0;
    const steps = 500;
    for (let s = 0; s < steps; s++) {
      const { loss } = await trainer.step(source.batch(batch), batch, 5e-3);
      if (s === 0) first = loss;
      last = loss;
    }
    const seconds = (performance.now() - started) / 1000;
    const best = bestCosines(dictionary, trainer.parameters().W_dec, 768);
    await trainer.release();
    const recovered = best.filter((c) => c > 0.9).length / dictionary.size;
    console.log(
      `recovery ${(100 * recovered).toFixed(1)}% at cos > 0.9; loss ${first.toFixed(3)} → ${last.toFixed(3)}; ` +
        `${steps} steps in ${seconds.toFixed(1)} s (${((steps * batch) / seconds).toFixed(0)} vectors/s incl. data generation)`,
    );
    expect(last).toBeLessThan(first / 2);
    expect(recovered).toBeGreaterThanOrEqual(0.9);
  });
});
