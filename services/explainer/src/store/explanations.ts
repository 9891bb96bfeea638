import { randomUUID } from 'node:crypto';
import { UserInputError } from '@loupe/common';
import type { Sql } from '@loupe/common/db';
import type { UsageTotals } from '../llm/types.js';
import { PROMPT_VERSION } from '../prompts/format.js';
import type { ScoreReport } from '../score/score.js';
import type { ClassificationReport } from '../scorers/classify.js';

/** An explanation with the score measured for it, as stored. */
export interface ScoredExplanation {
  unit: string;
  explanation: string;
  method: 'simulation' | 'detection' | 'fuzzing';
  score: number | null;
  topOnly: number | null;
  randomOnly: number | null;
  ci: [number, number] | null;
  reason: string | null;
  explainerModel: string | null;
  simulatorModel: string;
  provenance: Record<string, unknown>;
  usage: UsageTotals;
}

const NO_USAGE: UsageTotals = { calls: 0, promptTokens: 0, completionTokens: 0, retries: 0 };

export function fromScoreReport(unit: string, report: ScoreReport): ScoredExplanation {
  return {
    unit,
    explanation: report.explanation,
    method: 'simulation',
    score: report.score,
    topOnly: report.top_only,
    randomOnly: report.random_only,
    ci: report.ci,
    reason: report.reasons.score ?? null,
    explainerModel: report.provenance.explainer_model,
    simulatorModel: report.provenance.simulator_model,
    provenance: { ...report.provenance, failures: report.failures },
    usage: report.usage ?? NO_USAGE,
  };
}

export function fromClassificationReport(
  unit: string,
  report: ClassificationReport,
  explainerModel: string | null,
): ScoredExplanation {
  return {
    unit,
    explanation: report.explanation,
    method: report.method,
    score: report.balanced_accuracy,
    topOnly: null,
    randomOnly: null,
    ci: null,
    reason: report.reason ?? null,
    explainerModel,
    simulatorModel: report.provenance.judge_model,
    provenance: { ...report.provenance, failures: report.failures, prompt_version: PROMPT_VERSION },
    usage: report.usage ?? NO_USAGE,
  };
}

/** Stores one scored explanation; returns its id. Takes a transaction's `sql` too. */
export async function saveExplanation(
  sql: Sql,
  row: ScoredExplanation,
  embedding?: number[],
): Promise<string> {
  const id = randomUUID();
  // pgvector's text form; the column has no fixed dimension so any embedding model fits.
  const vector = embedding ? `[${embedding.join(',')}]` : null;
  await sql`
    INSERT INTO explanations (id, unit, explanation, method, score, top_only, random_only, ci_low, ci_high,
      reason, explainer_model, simulator_model, prompt_version, provenance, prompt_tokens, completion_tokens,
      llm_calls, embedding)
    VALUES (${id}, ${row.unit}, ${row.explanation}, ${row.method}, ${row.score}, ${row.topOnly},
      ${row.randomOnly}, ${row.ci?.[0] ?? null}, ${row.ci?.[1] ?? null}, ${row.reason}, ${row.explainerModel},
      ${row.simulatorModel}, ${PROMPT_VERSION}, ${sql.json(row.provenance as never)}, ${row.usage.promptTokens},
      ${row.usage.completionTokens}, ${row.usage.calls}, ${vector}::vector)`;
  return id;
}

export interface ExplanationHit {
  id: string;
  unit: string;
  explanation: string;
  method: string;
  score: number | null;
  explainerModel: string | null;
  simulatorModel: string;
  relevance: number;
  createdAt: Date;
}

const MAX_LIMIT = 500;

/**
 * Full-text search (Postgres `websearch_to_tsquery`, English stemming: "rivers" finds "river"), best
 * rank first and then best score; optionally only units under a prefix.
 */
export async function searchExplanations(
  sql: Sql,
  options: { query: string; limit?: number; unitPrefix?: string },
): Promise<ExplanationHit[]> {
  const query = options.query.trim();
  if (query === '') throw new UserInputError('search query is empty: give words to look for, e.g. "river"');
  const limit = options.limit || 20;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw new UserInputError(`search limit ${limit}: expected 1 to ${MAX_LIMIT}`);
  const prefix = `${(options.unitPrefix ?? '').replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const rows = await sql<
    {
      id: string;
      unit: string;
      explanation: string;
      method: string;
      score: number | null;
      explainer_model: string | null;
      simulator_model: string;
      relevance: number;
      created_at: Date;
    }[]
  >`
    SELECT id, unit, explanation, method, score, explainer_model, simulator_model,
      ts_rank(search, q) AS relevance, created_at
    FROM explanations, websearch_to_tsquery('english', ${query}) q
    WHERE search @@ q AND unit LIKE ${prefix}
    ORDER BY relevance DESC, score DESC NULLS LAST, created_at DESC
    LIMIT ${limit}`;
  return rows.map((r) => ({
    id: r.id,
    unit: r.unit,
    explanation: r.explanation,
    method: r.method,
    score: r.score,
    explainerModel: r.explainer_model,
    simulatorModel: r.simulator_model,
    relevance: Number(r.relevance),
    createdAt: r.created_at,
  }));
}

/**
 * Semantic search: explanations whose embedding is nearest (cosine) to the query's, among those embedded
 * with the same dimension (a model change leaves older rows out rather than comparing apples to pears).
 * Relevance is the cosine similarity.
 */
export async function semanticSearchExplanations(
  sql: Sql,
  queryEmbedding: number[],
  options: { limit?: number; unitPrefix?: string },
): Promise<ExplanationHit[]> {
  const limit = options.limit || 20;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw new UserInputError(`search limit ${limit}: expected 1 to ${MAX_LIMIT}`);
  const prefix = `${(options.unitPrefix ?? '').replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const vector = `[${queryEmbedding.join(',')}]`;
  const rows = await sql<
    {
      id: string;
      unit: string;
      explanation: string;
      method: string;
      score: number | null;
      explainer_model: string | null;
      simulator_model: string;
      relevance: number;
      created_at: Date;
    }[]
  >`
    SELECT id, unit, explanation, method, score, explainer_model, simulator_model,
      1 - (embedding <=> ${vector}::vector) AS relevance, created_at
    FROM explanations
    WHERE embedding IS NOT NULL AND vector_dims(embedding) = ${queryEmbedding.length} AND unit LIKE ${prefix}
    ORDER BY embedding <=> ${vector}::vector, created_at DESC
    LIMIT ${limit}`;
  return rows.map((r) => ({
    id: r.id,
    unit: r.unit,
    explanation: r.explanation,
    method: r.method,
    score: r.score,
    explainerModel: r.explainer_model,
    simulatorModel: r.simulator_model,
    relevance: Number(r.relevance),
    createdAt: r.created_at,
  }));
}

/** A stored explanation with everything the store keeps about its score. */
export interface StoredExplanation extends ScoredExplanation {
  id: string;
  promptVersion: string;
  createdAt: Date;
}

const MAX_LIST_UNITS = 1000;

/**
 * Stored explanations of the given units (a page of units in one query), or of every unit under a
 * prefix; with bestOnly, each unit's best-scoring one only (units without a score left out). Per unit:
 * best score first, no score last, then newest first.
 */
export async function listExplanations(
  sql: Sql,
  options: { units?: string[]; unitPrefix?: string; bestOnly?: boolean; method?: string },
): Promise<StoredExplanation[]> {
  const units = options.units ?? [];
  const prefix = options.unitPrefix ?? '';
  if ((units.length === 0) === (prefix === ''))
    throw new UserInputError('give either units (unit ids) or unit_prefix, not both and not neither');
  if (units.length > MAX_LIST_UNITS)
    throw new UserInputError(`${units.length} units: list at most ${MAX_LIST_UNITS} at once`);
  if (prefix && !options.bestOnly)
    throw new UserInputError("unit_prefix lists each unit's best explanation only: set best_only");
  const method = options.method ?? '';
  if (method && !['simulation', 'detection', 'fuzzing'].includes(method))
    throw new UserInputError(`method "${method}": expected simulation, detection or fuzzing`);
  const pattern = `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const rows = await sql`
    SELECT * FROM (
      SELECT *, row_number() OVER (PARTITION BY unit ORDER BY score DESC NULLS LAST, created_at DESC) AS rank
      FROM explanations
      WHERE ${units.length ? sql`unit = ANY(${units}::text[])` : sql`unit LIKE ${pattern}`}
        ${method ? sql`AND method = ${method}` : sql``}
        ${options.bestOnly ? sql`AND score IS NOT NULL` : sql``}
    ) ranked
    ${options.bestOnly ? sql`WHERE rank = 1` : sql``}
    ORDER BY unit, rank`;
  return rows.map((r) => ({
    id: r.id,
    unit: r.unit,
    explanation: r.explanation,
    method: r.method,
    score: r.score,
    topOnly: r.top_only,
    randomOnly: r.random_only,
    ci: r.ci_low === null || r.ci_high === null ? null : [r.ci_low, r.ci_high],
    reason: r.reason,
    explainerModel: r.explainer_model,
    simulatorModel: r.simulator_model,
    provenance: r.provenance,
    usage: {
      calls: r.llm_calls,
      promptTokens: Number(r.prompt_tokens),
      completionTokens: Number(r.completion_tokens),
      retries: 0,
    },
    promptVersion: r.prompt_version,
    createdAt: r.created_at,
  }));
}
