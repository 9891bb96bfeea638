import type { UsageMeter, UsageTotals } from '../llm/types.js';
import { PROMPT_VERSION } from '../prompts/format.js';
import type { ActivationRecord, SplitProvenance, UnitRecords } from '../records/records.js';
import type { Simulator } from '../simulate/types.js';
import { bootstrapInterval } from './bootstrap.js';
import { joinedPearson } from './pearson.js';

export interface ScoreOptions {
  seed?: number;
  bootstrapSamples?: number;
  /** Name of the model that wrote the explanation, for provenance (absent when a user gave it). */
  explainerModel?: string;
  meter?: UsageMeter;
  /** The split the scored records came from; absent when the caller scores every record it was given. */
  split?: SplitProvenance;
}

export interface ScoreProvenance {
  explainer_model: string | null;
  simulator_model: string;
  simulator_method: string;
  /** Which split of the unit's records was scored (null: every record given was scored). */
  record_split: SplitProvenance | null;
  prompt_version: string;
  record_ids: { top: string[]; random: string[] };
  seed: number;
  bootstrap_samples: number;
}

/** A simulation score in the shape the CLI and the service print (snake_case, as in the contract). */
export interface ScoreReport {
  explanation: string;
  score: number | null;
  top_only: number | null;
  random_only: number | null;
  /** Why a null score is null, per field. */
  reasons: { score?: string; top_only?: string; random_only?: string };
  ci: [number, number] | null;
  simulated: { top: (number[] | null)[]; random: (number[] | null)[] };
  failures: { record_id: string; side: 'top' | 'random'; reason: string }[];
  provenance: ScoreProvenance;
  usage?: UsageTotals;
}

/**
 * Simulates every scored record from the explanation and correlates with the true activations: over all
 * tokens of top and random joined, then each side alone. Records whose simulation failed are left out and
 * listed; they never count as zeros.
 */
export async function scoreExplanation(
  explanation: string,
  records: UnitRecords,
  simulator: Simulator,
  options: ScoreOptions = {},
): Promise<ScoreReport> {
  const seed = options.seed ?? 0;
  const samples = options.bootstrapSamples ?? 1000;
  const all = [...records.top, ...records.random];
  const outcomes = await simulator.simulate(
    explanation,
    all.map((r) => r.tokens),
    options.meter,
  );
  const failures: ScoreReport['failures'] = [];
  const side = (list: ActivationRecord[], offset: number, name: 'top' | 'random') =>
    list.map((record, i) => {
      const outcome = outcomes[offset + i];
      if (outcome.ok) return { record, simulated: outcome.values };
      failures.push({ record_id: record.id, side: name, reason: outcome.failure });
      return { record, simulated: null };
    });
  const top = side(records.top, 0, 'top');
  const random = side(records.random, records.top.length, 'random');
  const pairs = (list: typeof top) =>
    list
      .filter((p) => p.simulated !== null)
      .map((p) => ({ actual: p.record.activations, simulated: p.simulated as number[] }));
  const topPairs = pairs(top);
  const randomPairs = pairs(random);
  const joined = joinedPearson([...topPairs, ...randomPairs]);
  const topOnly = joinedPearson(topPairs);
  const randomOnly = joinedPearson(randomPairs);
  const reasons: ScoreReport['reasons'] = {};
  if (joined.value === null) reasons.score = reason(joined.reason, failures.length, all.length);
  if (topOnly.value === null) reasons.top_only = reason(topOnly.reason, failures.length, all.length);
  if (randomOnly.value === null) reasons.random_only = reason(randomOnly.reason, failures.length, all.length);
  return {
    explanation,
    score: joined.value,
    top_only: topOnly.value,
    random_only: randomOnly.value,
    reasons,
    ci:
      joined.value === null
        ? null
        : bootstrapInterval(
            [topPairs, randomPairs].filter((s) => s.length > 0),
            { seed, samples },
          ),
    simulated: { top: top.map((p) => p.simulated), random: random.map((p) => p.simulated) },
    failures,
    provenance: {
      explainer_model: options.explainerModel ?? null,
      simulator_model: simulator.model,
      simulator_method: simulator.method,
      record_split: options.split ?? null,
      prompt_version: PROMPT_VERSION,
      record_ids: { top: records.top.map((r) => r.id), random: records.random.map((r) => r.id) },
      seed,
      bootstrap_samples: samples,
    },
    usage: options.meter?.snapshot(),
  };
}

function reason(base: string, failed: number, total: number): string {
  return failed > 0 ? `${base} (${failed} of ${total} simulations failed)` : base;
}
