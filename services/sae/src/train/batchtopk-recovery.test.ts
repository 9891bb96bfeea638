import { describe, expect, it } from 'vitest';
import { bestCosines, syntheticBenchmark } from '../../testing/synthetic.js';
import { SaeTrainer } from './sae-trainer.js';

/** Mean count per vector of pre-activations above θ: the L0 of threshold inference. */
function thresholdL0(
  p: { W_enc: Float32Array; b_enc: Float32Array; b_dec: Float32Array },
  x: Float32Array,
  rows: number,
  d: number,
  m: number,
  theta: number,
): number {
  let firing = 0;
  const pre = new Float64Array(m);
  for (let b = 0; b < rows; b++) {
    pre.set(p.b_enc);
    for (let j = 0; j < d; j++) {
      const c = x[b * d + j] - p.b_dec[j];
      for (let i = 0; i < m; i++) pre[i] += c * p.W_enc[j * m + i];
    }
    for (const v of pre) if (v > theta) firing++;
  }
  return firing / rows;
}

/**
 * The synthetic benchmark of recovery.test.ts for BatchTopK, with the same width, k, lr and steps as the
 * TopK test. Measured at the time of writing: loss 6.65 → 1.62, training L0 6 exactly, θ ≈ 0.345 giving
 * an inference L0 of 5.6 on unseen vectors; but only 24% of directions recovered at cosine > 0.9 (TopK:
 * 99%), and no better after 1,500 steps (25%, with latents dying: 396 of 768 alive over the last 100
 * steps). Replacing the batch selection by a per-row one in the same graph reproduces the TopK trainer's
 * losses to the printed digits, so the plumbing is not at fault: on this data the number of active
 * directions per vector varies (Poisson(4)) and the batch-wide cut spends latents on the interference
 * of busy vectors. AuxK on dead latents (which Bussmann et al. train with; `auxk` in the architecture
 * settings) does not change that: measured with a dead window of 8 batches over 500 steps, dead latents
 * 53% → 25% but recovery 24.4% → 24.8%. Recovery is therefore logged, not asserted; ~18 s on 2 cores.
 */
describe('BatchTopK SAE on a synthetic sparse dictionary', () => {
  it('reduces the loss, keeps k per vector on average, and its threshold gives an L0 near k', async () => {
    const d = 64;
    const m = 768;
    const k = 6;
    const batch = 1024;
    const steps = 500;
    const { dictionary, source } = syntheticBenchmark(d);
    const trainer = await SaeTrainer.create(
      { shape: { d, m }, architecture: { kind: 'batchtopk', k }, seed: 3, device: 'cpu', intraOpThreads: 2 },
      source.batch(batch),
      batch,
    );
    const started = performance.now();
    const first = await trainer.step(source.batch(batch), batch, 5e-3);
    let last = first;
    for (let s = 1; s < steps; s++) last = await trainer.step(source.batch(batch), batch, 5e-3);
    const seconds = (performance.now() - started) / 1000;
    const params = trainer.parameters();
    const best = bestCosines(dictionary, params.W_dec, m);
    const theta = trainer.inferenceThreshold?.value;
    expect(theta).toBeDefined();
    const heldOut = source.batch(batch);
    const inferenceL0 = thresholdL0(params, heldOut, batch, d, m, theta as number);
    await trainer.release();
    const recovered = best.filter((c) => c > 0.9).length / dictionary.size;
    console.log(
      `BatchTopK: recovery ${(100 * recovered).toFixed(1)}% at cos > 0.9; loss ${first.loss.toFixed(3)} → ` +
        `${last.loss.toFixed(3)}; training L0 ${last.l0.toFixed(2)}; θ ${(theta as number).toFixed(4)} gives ` +
        `inference L0 ${inferenceL0.toFixed(2)}; ${steps} steps in ${seconds.toFixed(1)} s`,
    );
    expect(last.loss).toBeLessThan(first.loss / 2);
    // every kept activation is positive once trained, so the training L0 is k exactly
    expect(last.l0).toBeCloseTo(k, 1);
    // the threshold stands in for the batch selection: within 25% of k on unseen data
    expect(Math.abs(inferenceL0 - k)).toBeLessThan(0.25 * k);
  });
});
