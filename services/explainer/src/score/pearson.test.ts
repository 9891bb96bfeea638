import { Rng } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { bootstrapInterval, quantile } from './bootstrap.js';
import { joinedPearson, pearson } from './pearson.js';

/** Exact sums in BigInt on integer data; only the final division and sqrt are float64. */
function referencePearson(x: number[], y: number[]): number {
  const n = BigInt(x.length);
  let sx = 0n;
  let sy = 0n;
  let sxx = 0n;
  let syy = 0n;
  let sxy = 0n;
  for (let i = 0; i < x.length; i++) {
    const a = BigInt(x[i]);
    const b = BigInt(y[i]);
    sx += a;
    sy += b;
    sxx += a * a;
    syy += b * b;
    sxy += a * b;
  }
  const num = n * sxy - sx * sy;
  const vx = n * sxx - sx * sx;
  const vy = n * syy - sy * sy;
  return Number(num) / Math.sqrt(Number(vx) * Number(vy));
}

describe('pearson', () => {
  it('matches a hand-computed case', () => {
    // means 2.5, 3.75; Σdxdy = 3.5, Σdx² = 5, Σdy² = 4.75 → 3.5/√23.75
    expect(pearson([1, 2, 3, 4], [2, 4, 5, 4]).value).toBeCloseTo(3.5 / Math.sqrt(23.75), 14);
  });

  it('matches an exact-sum reference on data with a large offset (tolerance 1e-12)', () => {
    // A one-pass float64 formula loses ~6 digits at offset 1e6; the two-pass one must not.
    const rng = new Rng(7);
    const x = Array.from({ length: 5000 }, () => 1_000_000 + (rng.nextUint32() % 1000));
    const y = x.map((v) => v + (rng.nextUint32() % 500));
    expect(Math.abs((pearson(x, y).value as number) - referencePearson(x, y))).toBeLessThan(1e-12);
  });

  it('is null with the reason when a side is constant or too short', () => {
    expect(pearson([1, 1, 1], [1, 2, 3])).toEqual({ value: null, reason: 'true activations are constant' });
    expect(pearson([1, 2, 3], [0, 0, 0])).toEqual({
      value: null,
      reason: 'simulated activations are constant',
    });
    expect(pearson([1], [1]).value).toBeNull();
  });

  it('joins all tokens of all sequences rather than averaging per sequence', () => {
    // Each sequence alone correlates +1, but joined the levels disagree: sequence means anticorrelate.
    const pairs = [
      { actual: [0, 1], simulated: [10, 11] },
      { actual: [10, 11], simulated: [0, 1] },
    ];
    // joined x = [0,1,10,11], y = [10,11,0,1]: dx = [-5.5,-4.5,4.5,5.5], dy = [4.5,5.5,-5.5,-4.5]: Σdxdy = -99, Σdx² = Σdy² = 101
    expect(joinedPearson(pairs).value).toBeCloseTo(-99 / 101, 14);
  });
});

describe('bootstrapInterval', () => {
  const rng = new Rng(3);
  const stratum = (n: number, noise: number) =>
    Array.from({ length: n }, () => {
      const actual = Array.from({ length: 16 }, () => rng.nextNormal());
      return { actual, simulated: actual.map((a) => a + noise * rng.nextNormal()) };
    });
  const strata = [stratum(10, 0.5), stratum(10, 2)];

  it('contains the point estimate and is the same for the same seed', () => {
    const point = joinedPearson(strata.flat()).value as number;
    const ci = bootstrapInterval(strata, { seed: 1, samples: 500 }) as [number, number];
    expect(ci[0]).toBeLessThan(point);
    expect(ci[1]).toBeGreaterThan(point);
    expect(bootstrapInterval(strata, { seed: 1, samples: 500 })).toEqual(ci);
    expect(bootstrapInterval(strata, { seed: 2, samples: 500 })).not.toEqual(ci);
  });

  it('is null when resamples have no correlation', () => {
    expect(bootstrapInterval([[{ actual: [1, 1], simulated: [1, 2] }]], { seed: 0, samples: 50 })).toBeNull();
  });

  it('quantile interpolates between order statistics like numpy', () => {
    // numpy.quantile([1,2,3,4], 0.25) = 1.75
    expect(quantile([1, 2, 3, 4], 0.25)).toBeCloseTo(1.75, 15);
  });
});
