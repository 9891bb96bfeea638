import { Rng } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { ReconstructionAccumulator } from './sae-metrics.js';

describe('reconstruction metrics', () => {
  // data far from the origin (offset 3 in every dimension) and a reconstruction that gets the offset
  // right and half of the rest: the centred figure is about 0.75, SAELens's exceeds 1
  const d = 4;
  const n = 4000;
  const rng = new Rng(7);
  const x = new Float32Array(n * d);
  const xHat = new Float32Array(n * d);
  for (let i = 0; i < n * d; i++) {
    const noise = rng.nextNormal();
    x[i] = 3 + noise;
    xHat[i] = 3 + noise / 2;
  }

  it('reports the centred explained variance and SAELens’s beside it, each as its reference computes it', () => {
    const acc = new ReconstructionAccumulator(d);
    // in uneven batches: the figures are over all vectors, however they arrive
    acc.add(x.subarray(0, 7 * d), xHat.subarray(0, 7 * d), 7);
    acc.add(x.subarray(7 * d), xHat.subarray(7 * d), n - 7);
    const m = acc.result();
    // float64 references, written out plainly
    const mean = Array.from({ length: d }, (_, j) => {
      let s = 0;
      for (let r = 0; r < n; r++) s += x[r * d + j];
      return s / n;
    });
    let [residual, centred, squares] = [0, 0, 0];
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < d; j++) {
        const v = x[r * d + j];
        residual += (v - xHat[r * d + j]) ** 2;
        centred += (v - mean[j]) ** 2;
        squares += v * v;
      }
    }
    expect(m.fvu).toBeCloseTo(residual / centred, 10);
    expect(m.explainedVariance).toBeCloseTo(1 - residual / centred, 10);
    expect(m.explainedVariance).toBeCloseTo(0.75, 1);
    // sae_lens/evals.py: total = mean over tokens of Σx² − (mean over tokens and dims of x²)²
    const meanSquare = squares / (n * d);
    const saeLens = 1 - residual / n / (squares / n - meanSquare ** 2);
    expect(m.explainedVarianceSaelens).toBeCloseTo(saeLens, 10);
    expect(m.explainedVarianceSaelens).toBeGreaterThan(1);
  });
});
