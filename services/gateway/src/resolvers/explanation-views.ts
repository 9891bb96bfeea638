import type {
  LlmChoice,
  Score__Output,
  ScoringJob__Output,
  Simulation__Output,
  StoredExplanation__Output,
  Usage__Output,
} from '@loupe/common/grpc';

/** The explainer's built-in statistical explainer and simulator (no LLM): a baseline wherever it shows. */
export const BASELINE_MODEL = 'baseline-statistical';

/** GraphQL's ScoringMethod enum and the explainer's method names. */
export type ScoringMethod = 'SIMULATION' | 'DETECTION' | 'FUZZING';
export const toMethod = (method: ScoringMethod | null | undefined) => (method ?? 'SIMULATION').toLowerCase();
const fromMethod = (method: string) => (method || 'simulation').toUpperCase() as ScoringMethod;

/** LlmChoiceInput: the model and simulator only; the server is the explainer's configured one. */
export interface LlmChoiceInput {
  model?: string | null;
  simulator?: string | null;
}

export function llmChoice(input: LlmChoiceInput | null | undefined): LlmChoice {
  return { model: input?.model ?? '', simulator: input?.simulator ?? '' };
}

const usage = (u: Usage__Output | null) => ({
  calls: u?.calls ?? 0,
  promptTokens: Number(u?.promptTokens ?? 0),
  completionTokens: Number(u?.completionTokens ?? 0),
  retries: u?.retries ?? 0,
});

const optional = (v: number | undefined | null) => (v === undefined || v === null ? null : v);

function parseProvenance(json: string): Record<string, unknown> {
  try {
    const parsed = JSON.parse(json || '{}');
    return parsed && typeof parsed === 'object' ? parsed : {};
  } catch {
    return {};
  }
}

/** The split's name from the explainer's record_split provenance ({ name, … }), or null. */
const splitName = (v: unknown) =>
  v && typeof v === 'object' && typeof (v as { name?: unknown }).name === 'string'
    ? (v as { name: string }).name
    : null;

const strings = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);

/** Score (value with top-only, random-only, 95% interval, or null and why) and its provenance. */
export function scoreView(score: Score__Output, models: { explainer: string; simulator: string }) {
  const p = parseProvenance(score.provenanceJson);
  const ids = (p.record_ids ?? {}) as { top?: unknown; random?: unknown };
  const simulator = models.simulator || String(p.simulator_model ?? p.judge_model ?? '');
  const explainer = models.explainer || (typeof p.explainer_model === 'string' ? p.explainer_model : '');
  return {
    method: fromMethod(score.method),
    value: optional(score.score),
    topOnly: optional(score.topOnly),
    randomOnly: optional(score.randomOnly),
    ciLow: optional(score.ciLow),
    ciHigh: optional(score.ciHigh),
    reason: score.reason || null,
    usage: usage(score.usage),
    provenance: {
      explainerModel: explainer || null,
      simulatorModel: simulator,
      simulatorMethod: typeof p.simulator_method === 'string' ? p.simulator_method : null,
      recordSplit: splitName(p.record_split),
      promptVersion: typeof p.prompt_version === 'string' ? p.prompt_version : null,
      recordIds: { top: strings(ids.top), random: strings(ids.random) },
      seed: typeof p.seed === 'number' ? p.seed : null,
      failures: Array.isArray(p.failures) ? p.failures.length : 0,
      json: score.provenanceJson || '{}',
    },
    baseline: explainer === BASELINE_MODEL || simulator === BASELINE_MODEL,
  };
}

export type ScoreView = ReturnType<typeof scoreView>;

export interface ExplanationView {
  id: string;
  unitId: string;
  text: string;
  score: ScoreView;
  explainerModel: string | null;
  simulatorModel: string;
  promptVersion: string | null;
  baseline: boolean;
  createdAt: string;
}

export function storedExplanationView(row: StoredExplanation__Output): ExplanationView {
  const score = scoreView(row.score!, { explainer: row.explainerModel, simulator: row.simulatorModel });
  return {
    id: row.id,
    unitId: row.unit,
    text: row.score?.explanation ?? '',
    score,
    explainerModel: row.explainerModel || null,
    simulatorModel: row.simulatorModel,
    promptVersion: row.promptVersion || score.provenance.promptVersion,
    baseline: score.baseline,
    createdAt: row.createdAt,
  };
}

export const simulationView = (s: Simulation__Output) => ({
  ok: s.ok,
  values: s.values,
  failure: s.failure || null,
});

/** A scoring job with its progress and running cost (tokens and US dollars spent so far). */
export function scoringJobView(j: ScoringJob__Output) {
  const promptTokens = Number(j.promptTokens);
  const completionTokens = Number(j.completionTokens);
  return {
    kind: 'SCORING' as const,
    id: j.id,
    status: j.status,
    method: fromMethod(j.method),
    unitsTotal: j.unitsTotal,
    unitsDone: j.unitsDone,
    unitsFailed: j.unitsFailed,
    progress: j.unitsTotal > 0 ? (j.unitsDone + j.unitsFailed) / j.unitsTotal : 0,
    llmCalls: j.llmCalls,
    promptTokens,
    completionTokens,
    tokensSpent: promptTokens + completionTokens,
    costUsd: j.costUsd,
    createdAt: j.createdAt,
    sources: j.sources,
    error: j.error || null,
  };
}
