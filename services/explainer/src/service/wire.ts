import type {
  ExplanationHit as ExplanationHitMessage,
  LlmChoice__Output,
  Score,
  ScoringJob,
  Simulation,
  StoredExplanation as StoredExplanationMessage,
  UnitRecords__Output,
  Usage,
} from '@loupe/common/grpc';
import type { JobRow } from '../jobs/job-store.js';
import type { UsageTotals } from '../llm/types.js';
import { parseUnitRecords, type UnitRecords } from '../records/records.js';
import type { ScoreReport } from '../score/score.js';
import type { ClassificationReport } from '../scorers/classify.js';
import type { SimulationOutcome } from '../simulate/types.js';
import type { ExplanationHit, StoredExplanation } from '../store/explanations.js';

// Conversions between the proto messages and the library's types; no logic beyond the mapping.

/** Records from a request, validated like a records file; ids name the dataset windows. */
export function recordsFromWire(records: UnitRecords__Output | null): UnitRecords | null {
  if (!records || records.top.length === 0) return null;
  const side = (name: string, windows: UnitRecords__Output['top']) =>
    windows.map((w, i) => ({
      id: `${name}:${i}:window:${w.window}`,
      tokens: w.tokens,
      activations: w.values,
    }));
  return parseUnitRecords(
    { top: side('top', records.top), random: side('random', records.random) },
    'records',
  );
}

export interface LlmChoice {
  baseUrl?: string;
  model?: string;
  simulator?: string;
}

export function llmChoice(choice: LlmChoice__Output | null): LlmChoice {
  return {
    baseUrl: choice?.baseUrl || undefined,
    model: choice?.model || undefined,
    simulator: choice?.simulator || undefined,
  };
}

export const usageToWire = (usage: UsageTotals | undefined): Usage => ({
  calls: usage?.calls ?? 0,
  promptTokens: usage?.promptTokens ?? 0,
  completionTokens: usage?.completionTokens ?? 0,
  retries: usage?.retries ?? 0,
});

export const simulationToWire = (outcome: SimulationOutcome): Simulation =>
  outcome.ok ? { ok: true, values: outcome.values } : { ok: false, failure: outcome.failure };

const optional = <K extends string>(key: K, value: number | null | undefined) =>
  (value === null || value === undefined ? {} : { [key]: value }) as Partial<Record<K, number>>;

export function scoreToWire(report: ScoreReport): Score {
  const sims = (list: (number[] | null)[], side: 'top' | 'random', ids: string[]): Simulation[] =>
    list.map((values, i) =>
      values
        ? { ok: true, values }
        : {
            ok: false,
            failure:
              report.failures.find((f) => f.side === side && f.record_id === ids[i])?.reason ?? 'failed',
          },
    );
  return {
    method: 'simulation',
    explanation: report.explanation,
    ...optional('score', report.score),
    ...optional('topOnly', report.top_only),
    ...optional('randomOnly', report.random_only),
    reason: report.reasons.score ?? '',
    ...optional('ciLow', report.ci?.[0]),
    ...optional('ciHigh', report.ci?.[1]),
    simulatedTop: sims(report.simulated.top, 'top', report.provenance.record_ids.top),
    simulatedRandom: sims(report.simulated.random, 'random', report.provenance.record_ids.random),
    provenanceJson: JSON.stringify({ ...report.provenance, failures: report.failures }),
    usage: usageToWire(report.usage),
  };
}

export function classificationToWire(report: ClassificationReport): Score {
  return {
    method: report.method,
    explanation: report.explanation,
    ...optional('score', report.balanced_accuracy),
    reason: report.reason ?? '',
    provenanceJson: JSON.stringify({
      ...report.provenance,
      failures: report.failures,
      examples: report.examples,
    }),
    usage: usageToWire(report.usage),
  };
}

/** A job as the wire's ScoringJob; `sources` from jobSources (the runner's own reads need none). */
export const jobToWire = (job: JobRow, sources: string[] = []): ScoringJob => ({
  id: job.id,
  status: job.status,
  method: job.method,
  unitsTotal: job.unitsTotal,
  unitsDone: job.unitsDone,
  unitsFailed: job.unitsFailed,
  promptTokens: job.promptTokens,
  completionTokens: job.completionTokens,
  llmCalls: job.llmCalls,
  error: job.error ?? '',
  costUsd: job.costUsd,
  createdAt: job.createdAt,
  sources,
});

export const hitToWire = (hit: ExplanationHit): ExplanationHitMessage => ({
  id: hit.id,
  unit: hit.unit,
  explanation: hit.explanation,
  method: hit.method,
  ...optional('score', hit.score),
  explainerModel: hit.explainerModel ?? '',
  simulatorModel: hit.simulatorModel,
  relevance: hit.relevance,
  createdAt: hit.createdAt.toISOString(),
});

/** A stored explanation; its score carries no per-token simulations (the store keeps none). */
export const storedToWire = (row: StoredExplanation): StoredExplanationMessage => ({
  id: row.id,
  unit: row.unit,
  score: {
    method: row.method,
    explanation: row.explanation,
    ...optional('score', row.score),
    ...optional('topOnly', row.topOnly),
    ...optional('randomOnly', row.randomOnly),
    reason: row.reason ?? '',
    ...optional('ciLow', row.ci?.[0]),
    ...optional('ciHigh', row.ci?.[1]),
    provenanceJson: JSON.stringify(row.provenance),
    usage: usageToWire(row.usage),
  },
  explainerModel: row.explainerModel ?? '',
  simulatorModel: row.simulatorModel,
  promptVersion: row.promptVersion,
  createdAt: row.createdAt.toISOString(),
});
