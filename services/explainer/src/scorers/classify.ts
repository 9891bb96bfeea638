import { Rng } from '@loupe/common';
import type { UsageMeter, UsageTotals } from '../llm/types.js';
import { normalizeActivations } from '../prompts/format.js';
import type { UnitRecords } from '../records/records.js';
import { balancedAccuracy } from './balanced-accuracy.js';
import type { Judge, JudgedExample, JudgeTask } from './judge.js';

export interface ClassificationOptions {
  judge: Judge;
  seed?: number;
  /** Examples per LLM call (EleutherAI batch several to cut cost). */
  batchSize?: number;
  meter?: UsageMeter;
}

export interface ClassificationReport {
  method: JudgeTask;
  explanation: string;
  balanced_accuracy: number | null;
  reason?: string;
  examples: number;
  failures: { batch: number; reason: string }[];
  provenance: { judge_model: string; record_ids: { top: string[]; random: string[] }; seed: number };
  usage?: UsageTotals;
}

interface Labelled extends JudgedExample {
  label: boolean;
}

/**
 * Detection: does the unit fire on this window? A window is positive when it fires (≥ 1 on the 0–10
 * scale, max over top and random together), negative otherwise, whichever set it came from: a random
 * window that happens to fire is a positive, not a wrong answer. One short answer per window: a fraction
 * of simulation's cost.
 */
export function detectionExamples(records: UnitRecords): Labelled[] {
  const all = [...records.top, ...records.random];
  const normalized = normalizeActivations(all);
  return all.map((r, i) => ({ tokens: r.tokens, label: normalized[i].some((v) => v >= 1) }));
}

/**
 * Fuzzing: each top window twice, once with the tokens that fire (≥ 1 on the 0–10 scale) highlighted,
 * once with as many non-firing tokens highlighted instead. Windows where that is impossible are skipped.
 */
export function fuzzingExamples(records: UnitRecords, seed: number): Labelled[] {
  const rng = Rng.derive(seed, 'fuzzing');
  const normalized = normalizeActivations(records.top);
  const examples: Labelled[] = [];
  records.top.forEach((record, r) => {
    const firing = normalized[r].flatMap((v, i) => (v >= 1 ? [i] : []));
    const quiet = normalized[r].flatMap((v, i) => (v === 0 ? [i] : []));
    if (firing.length === 0 || quiet.length < firing.length) return;
    for (let i = quiet.length - 1; i > 0; i--) {
      const j = rng.nextUint32() % (i + 1);
      [quiet[i], quiet[j]] = [quiet[j], quiet[i]];
    }
    examples.push({ tokens: record.tokens, highlighted: firing, label: true });
    examples.push({
      tokens: record.tokens,
      highlighted: quiet.slice(0, firing.length).sort((a, b) => a - b),
      label: false,
    });
  });
  return examples;
}

/** Shuffles the examples (seeded), asks the judge in batches and scores the answers by balanced accuracy. */
export async function classificationScore(
  method: JudgeTask,
  explanation: string,
  records: UnitRecords,
  options: ClassificationOptions,
): Promise<ClassificationReport> {
  const seed = options.seed ?? 0;
  const examples = method === 'detection' ? detectionExamples(records) : fuzzingExamples(records, seed);
  const rng = Rng.derive(seed, `${method}-order`);
  for (let i = examples.length - 1; i > 0; i--) {
    const j = rng.nextUint32() % (i + 1);
    [examples[i], examples[j]] = [examples[j], examples[i]];
  }
  const size = Math.max(1, options.batchSize ?? 5);
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
  return {
    method,
    explanation,
    balanced_accuracy: accuracy.value,
    ...(accuracy.reason ? { reason: accuracy.reason } : {}),
    examples: judged.length,
    failures,
    provenance: {
      judge_model: options.judge.model,
      record_ids: { top: records.top.map((r) => r.id), random: records.random.map((r) => r.id) },
      seed,
    },
    usage: options.meter?.snapshot(),
  };
}
