import { Rng } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import type { ArchitectureSettings } from '../architectures/registry.js';
import { geometricMedian } from './geometric-median.js';
import { type BDecInit, batchMean } from './init.js';
import { SaeTrainer } from './sae-trainer.js';

/** Sum of distances from y to every row: what the geometric median minimises. */
function cost(batch: Float32Array, rows: number, d: number, y: ArrayLike<number>): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += (batch[r * d + j] - y[j]) ** 2;
    total += Math.sqrt(s);
  }
  return total;
}

describe('geometric median (Weiszfeld)', () => {
  it('is the middle point of three on a line, where the mean is pulled away', () => {
    const batch = Float32Array.from([0, 0, 1, 0, 100, 0]);
    const { median } = geometricMedian(batch, 3, 2, { tolerance: 1e-10, maxIterations: 10_000 });
    expect(median[0]).toBeCloseTo(1, 3);
    expect(median[1]).toBeCloseTo(0, 6);
  });

  it('is the Fermat point of a triangle with all angles under 120°: 120° between the three directions', () => {
    const batch = Float32Array.from([0, 0, 4, 0, 1, 3]);
    const { median: y } = geometricMedian(batch, 3, 2, { tolerance: 1e-12, maxIterations: 10_000 });
    const unit = (x: number, z: number) => {
      const n = Math.hypot(x - y[0], z - y[1]);
      return [(x - y[0]) / n, (z - y[1]) / n];
    };
    const [a, b, c] = [unit(0, 0), unit(4, 0), unit(1, 3)];
    const cos = (u: number[], v: number[]) => u[0] * v[0] + u[1] * v[1];
    for (const value of [cos(a, b), cos(b, c), cos(a, c)]) expect(value).toBeCloseTo(-0.5, 3);
  });

  it('costs no more than the mean or any nearby point, and outliers barely move it', () => {
    const rng = new Rng(3);
    const rows = 400;
    const d = 8;
    const batch = rng.normalFloat32(rows * d, 0, 1);
    for (let j = 0; j < d; j++) batch[j] = 1000; // one massive-norm row, like GPT-2's first position
    const { median } = geometricMedian(batch, rows, d);
    const mean = new Float64Array(d);
    for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) mean[j] += batch[r * d + j] / rows;
    const best = cost(batch, rows, d, median);
    expect(best).toBeLessThan(cost(batch, rows, d, mean));
    for (let trial = 0; trial < 20; trial++) {
      const nudged = Array.from(median, (v) => v + rng.nextNormal() * 0.01);
      expect(best).toBeLessThanOrEqual(cost(batch, rows, d, nudged) + 1e-6);
    }
    expect(Math.max(...Array.from(median, Math.abs))).toBeLessThan(0.2);
    expect(Math.min(...Array.from(mean, Math.abs))).toBeGreaterThan(2);
  });
});

describe('b_dec initialisation', () => {
  const d = 16;
  const rows = 64;
  const batch = new Rng(9).normalFloat32(rows * d, 0.5, 1);
  for (let j = 0; j < d; j++) batch[j] = 500; // an outlier the median ignores and the mean does not
  const expected = geometricMedian(batch, rows, d).median;

  it('is the first batch’s geometric median when asked, for TopK and ReLU-L1 alike, and its mean by default', async () => {
    const open = (architecture: ArchitectureSettings, bDecInit?: BDecInit) =>
      SaeTrainer.create(
        { shape: { d, m: 32 }, architecture, seed: 1, device: 'cpu', intraOpThreads: 1, bDecInit },
        batch,
        rows,
      );
    const topk = await open({ kind: 'topk', k: 4 }, 'geometric-median');
    const relu = await open({ kind: 'relu', l1: 0.1, l1WarmupSteps: 0 }, 'geometric-median');
    const plain = await open({ kind: 'topk', k: 4 });
    try {
      expect(Array.from(topk.parameters().b_dec)).toEqual(Array.from(expected));
      expect(Array.from(relu.parameters().b_dec)).toEqual(Array.from(expected));
      expect(Array.from(plain.parameters().b_dec)).toEqual(Array.from(batchMean(batch, rows, d)));
      expect(Math.abs(expected[0] - plain.parameters().b_dec[0])).toBeGreaterThan(1);
    } finally {
      await Promise.all([topk.release(), relu.release(), plain.release()]);
    }
  });
});
