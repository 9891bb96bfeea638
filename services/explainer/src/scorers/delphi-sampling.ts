import { Rng } from '@loupe/common';
import type { ActivationRecord, UnitRecords } from '../records/records.js';

/**
 * EleutherAI delphi's defaults for detection and fuzzing (delphi/config.py and scorers/classifier):
 * 50 activating test examples drawn evenly from 10 quantiles of activation, 50 non-activating examples,
 * 32-token examples, 5 examples per prompt, and fuzzing highlights at ≥ 0.3 × the example's maximum.
 */
export const DELPHI_DEFAULTS = {
  activatingExamples: 50,
  quantiles: 10,
  nonActivatingExamples: 50,
  exampleTokens: 32,
  examplesPerPrompt: 5,
  fuzzThreshold: 0.3,
} as const;

export type DelphiSampling = typeof DELPHI_DEFAULTS;

/** A 32-token example cut from one record window, with its activations. */
export interface SampledExample {
  recordId: string;
  tokens: string[];
  activations: number[];
  /** 1…quantiles for activating examples (1 = weakest); 0 for non-activating ones. */
  quantile: number;
}

export interface DelphiSample {
  activating: SampledExample[];
  nonActivating: SampledExample[];
  /**
   * A window activates when its maximum exceeds this. delphi's rule is > 0 (SAE latents are exactly 0
   * when silent); for units that are never exactly silent (GELU neurons), no window would be
   * non-activating, so there the threshold is a tenth of the largest activation, Loupe's earlier rule.
   */
  activityThreshold: number;
}

const max = (values: readonly number[]) => values.reduce((m, v) => Math.max(m, v), Number.NEGATIVE_INFINITY);

function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.nextUint32() % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Cuts `length` tokens from a window: around its maximum for an activating one (delphi cuts its fixed
 * context blocks; Loupe's records are already windows around top activations, so centring keeps the
 * firing token), at a seeded random offset for a non-activating one.
 */
function cut(record: ActivationRecord, length: number, quantile: number, rng: Rng): SampledExample {
  const n = record.tokens.length;
  let start = 0;
  if (n > length) {
    if (quantile > 0) {
      const peak = record.activations.indexOf(max(record.activations));
      start = Math.min(Math.max(0, peak - Math.floor(length / 2)), n - length);
    } else start = rng.nextUint32() % (n - length + 1);
  }
  return {
    recordId: record.id,
    tokens: record.tokens.slice(start, start + length),
    activations: record.activations.slice(start, start + length),
    quantile,
  };
}

/**
 * delphi's test sample from a unit's windows (top and random pooled): activating windows sorted by their
 * maximum and cut into equal quantiles, the same number drawn from each (all of a quantile that has
 * fewer), and non-activating windows drawn at random. Seeded. With Loupe's records the pool is the top
 * and random windows the unit has, so a unit with few records yields fewer examples than delphi's 50 + 50;
 * the report says how many were used.
 */
export function delphiSample(
  records: UnitRecords,
  seed: number,
  sampling: DelphiSampling = DELPHI_DEFAULTS,
): DelphiSample {
  const rng = Rng.derive(seed, 'delphi-sample');
  const windows = [...records.top, ...records.random];
  const peaks = windows.map((w) => max(w.activations));
  const silent = peaks.filter((p) => p <= 0).length;
  const activityThreshold = silent > 0 ? 0 : 0.1 * Math.max(0, max(peaks));
  const active = windows
    .map((w, i) => ({ w, peak: peaks[i] }))
    .filter((x) => x.peak > activityThreshold)
    .sort((a, b) => a.peak - b.peak);
  const quiet = windows.filter((_, i) => peaks[i] <= activityThreshold);

  const perQuantile = Math.floor(sampling.activatingExamples / sampling.quantiles);
  const activating: SampledExample[] = [];
  for (let q = 0; q < sampling.quantiles; q++) {
    // Equal-count bins over the sorted windows (numpy's array_split: sizes differ by at most one).
    const from = Math.floor((q * active.length) / sampling.quantiles);
    const to = Math.floor(((q + 1) * active.length) / sampling.quantiles);
    for (const { w } of shuffled(active.slice(from, to), rng).slice(0, perQuantile))
      activating.push(cut(w, sampling.exampleTokens, q + 1, rng));
  }
  const nonActivating = shuffled(quiet, rng)
    .slice(0, sampling.nonActivatingExamples)
    .map((w) => cut(w, sampling.exampleTokens, 0, rng));
  return { activating, nonActivating, activityThreshold };
}

/** Fuzzing's highlight on an activating example: the tokens at ≥ threshold × the example's maximum. */
export function fuzzHighlights(example: SampledExample, threshold: number): number[] {
  const limit = threshold * max(example.activations);
  return example.activations.flatMap((a, i) => (a >= limit && a > 0 ? [i] : []));
}

/**
 * delphi's number of wrong highlights on a non-activating example: the mean count of active tokens per
 * activating example, rounded up.
 */
export function incorrectHighlightCount(
  activating: readonly SampledExample[],
  activityThreshold: number,
): number {
  if (activating.length === 0) return 1;
  const total = activating.reduce((n, e) => n + e.activations.filter((a) => a > activityThreshold).length, 0);
  return Math.max(1, Math.ceil(total / activating.length));
}

/** `count` distinct positions of a non-activating example, seeded, in order. */
export function randomHighlights(length: number, count: number, rng: Rng): number[] {
  return shuffled(
    Array.from({ length }, (_, i) => i),
    rng,
  )
    .slice(0, Math.min(count, length))
    .sort((a, b) => a - b);
}
