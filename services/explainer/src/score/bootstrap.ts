import { Rng } from '@loupe/common';
import { joinedPearson } from './pearson.js';

interface Pair {
  actual: readonly number[];
  simulated: readonly number[];
}

export interface BootstrapOptions {
  seed: number;
  samples?: number;
  /** Interval coverage; 0.95 gives the 2.5th and 97.5th percentiles. */
  level?: number;
}

/**
 * Percentile bootstrap over sequences (tokens of a window are not independent, sequences are), drawn
 * within each stratum so every resample keeps the top:random balance of the score. Null when most
 * resamples have no defined correlation.
 */
export function bootstrapInterval(
  strata: readonly (readonly Pair[])[],
  options: BootstrapOptions,
): [number, number] | null {
  const samples = options.samples ?? 1000;
  if (samples <= 0) return null;
  const rng = Rng.derive(options.seed, 'bootstrap');
  const values: number[] = [];
  for (let b = 0; b < samples; b++) {
    const resample: Pair[] = [];
    for (const stratum of strata)
      for (let i = 0; i < stratum.length; i++) resample.push(stratum[rng.nextUint32() % stratum.length]);
    const r = joinedPearson(resample);
    if (r.value !== null) values.push(r.value);
  }
  if (values.length < samples / 2) return null;
  values.sort((a, b) => a - b);
  const alpha = (1 - (options.level ?? 0.95)) / 2;
  return [quantile(values, alpha), quantile(values, 1 - alpha)];
}

/** Linear interpolation between order statistics (numpy's default). */
export function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
