import { Rng } from '@loupe/common';
import type { UsageMeter, UsageTotals } from '../llm/types.js';
import type { SplitProvenance, UnitRecords } from '../records/records.js';
import { balancedAccuracy } from './balanced-accuracy.js';
import {
  DELPHI_DEFAULTS,
  type DelphiSample,
  type DelphiSampling,
  delphiSample,
  fuzzHighlights,
  incorrectHighlightCount,
  randomHighlights,
} from './delphi-sampling.js';
import type { Judge, JudgedExample, JudgeTask } from './judge.js';

export interface ClassificationOptions {
  judge: Judge;
  seed?: number;
  /** Examples per LLM call; delphi's default is 5. */
  batchSize?: number;
  meter?: UsageMeter;
  /** delphi's sampling settings; its defaults unless a caller overrides them. */
  sampling?: Partial<DelphiSampling>;
  /** The split the records came from; absent when every record given is sampled from. */
  split?: SplitProvenance;
}

export interface ClassificationReport {
  method: JudgeTask;
  explanation: string;
  /** (true-positive rate + true-negative rate) / 2 over the examples the judge answered, as delphi's. */
  balanced_accuracy: number | null;
  true_positive_rate: number | null;
  true_negative_rate: number | null;
  reason?: string;
  /** Examples judged (answered); failed batches are listed and left out, never counted as wrong. */
  examples: number;
  positives: number;
  negatives: number;
  failures: { batch: number; reason: string }[];
  provenance: {
    judge_model: string;
    record_ids: { top: string[]; random: string[] };
    seed: number;
    sampling: DelphiSampling & { activity_threshold: number; activating: number; non_activating: number };
    record_split: SplitProvenance | null;
  };
  usage?: UsageTotals;
}

export interface Labelled extends JudgedExample {
  label: boolean;
}

/** Detection: each sampled example as plain text; positive when it came from an activating window. */
export function detectionExamples(sample: DelphiSample): Labelled[] {
  return [
    ...sample.activating.map((e) => ({ tokens: e.tokens, label: true })),
    ...sample.nonActivating.map((e) => ({ tokens: e.tokens, label: false })),
  ];
}

/**
 * Fuzzing as delphi's default: activating examples with the tokens at ≥ threshold × the example's
 * maximum highlighted (positives), non-activating examples with as many random tokens highlighted as an
 * activating example has active tokens on average, rounded up (negatives).
 */
export function fuzzingExamples(sample: DelphiSample, seed: number, threshold: number): Labelled[] {
  const rng = Rng.derive(seed, 'fuzzing');
  const wrong = incorrectHighlightCount(sample.activating, sample.activityThreshold);
  return [
    ...sample.activating.map((e) => ({
      tokens: e.tokens,
      highlighted: fuzzHighlights(e, threshold),
      label: true,
    })),
    ...sample.nonActivating.map((e) => ({
      tokens: e.tokens,
      highlighted: randomHighlights(e.tokens.length, wrong, rng),
      label: false,
    })),
  ];
}

/**
 * delphi's detection and fuzzing: samples examples from the records as delphi does, shuffles them
 * (seeded), asks the judge a few per call and scores the answers by balanced accuracy.
 *
 * Deliberate differences from delphi, for Loupe's records: the pool is the unit's top and random windows
 * (not every activating context of a large cache), so a unit with few records gives fewer than 50 + 50
 * examples; examples are cut around the window's maximum; units that are never exactly silent use a
 * tenth of the maximum as the activity threshold (see delphiSample); answers come as a JSON list.
 */
export async function classificationScore(
  method: JudgeTask,
  explanation: string,
  records: UnitRecords,
  options: ClassificationOptions,
): Promise<ClassificationReport> {
  const seed = options.seed ?? 0;
  const sampling: DelphiSampling = { ...DELPHI_DEFAULTS, ...options.sampling };
  const sample = delphiSample(records, seed, sampling);
  const examples =
    method === 'detection'
      ? detectionExamples(sample)
      : fuzzingExamples(sample, seed, sampling.fuzzThreshold);
  const rng = Rng.derive(seed, `${method}-order`);
  for (let i = examples.length - 1; i > 0; i--) {
    const j = rng.nextUint32() % (i + 1);
    [examples[i], examples[j]] = [examples[j], examples[i]];
  }
  const size = Math.max(1, options.batchSize ?? sampling.examplesPerPrompt);
  const batches: Labelled[][] = [];
  for (let i = 0; i < examples.length; i += size) batches.push(examples.slice(i, i + size));
  const failures: ClassificationReport['failures'] = [];
  const judged: { label: boolean; answer: boolean }[] = [];
  const replies = await Promise.all(
    batches.map((batch) => options.judge.judge(method, explanation, batch, options.meter)),
  );
  replies.forEach((reply, b) => {
    if ('failure' in reply) failures.push({ batch: b, reason: reply.failure });
    else for (const [i, e] of batches[b].entries()) judged.push({ label: e.label, answer: reply.answers[i] });
  });
  const accuracy = balancedAccuracy(judged);
  const rate = (label: boolean) => {
    const side = judged.filter((j) => j.label === label);
    return side.length === 0 ? null : side.filter((j) => j.answer === label).length / side.length;
  };
  return {
    method,
    explanation,
    balanced_accuracy: accuracy.value,
    true_positive_rate: rate(true),
    true_negative_rate: rate(false),
    ...(accuracy.reason ? { reason: accuracy.reason } : {}),
    examples: judged.length,
    positives: judged.filter((j) => j.label).length,
    negatives: judged.filter((j) => !j.label).length,
    failures,
    provenance: {
      judge_model: options.judge.model,
      record_ids: { top: records.top.map((r) => r.id), random: records.random.map((r) => r.id) },
      seed,
      sampling: {
        ...sampling,
        activity_threshold: sample.activityThreshold,
        activating: sample.activating.length,
        non_activating: sample.nonActivating.length,
      },
      record_split: options.split ?? null,
    },
    usage: options.meter?.snapshot(),
  };
}
