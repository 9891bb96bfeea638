import { randomUUID } from 'node:crypto';
import { LoupeError, UserInputError } from '@loupe/common';
import {
  CREATED_AT_ISO,
  isDeadLocalWorker,
  type JobListRequest,
  listJobRows,
  type Sql,
  workerName,
} from '@loupe/common/db';
import { recordJobFinished } from '@loupe/common/metrics';
import { type LlmPrices, llmCostUsd } from '../llm/cost.js';
import type { UsageTotals } from '../llm/types.js';
import { type ScoredExplanation, saveExplanation } from '../store/explanations.js';

export type JobMethod = 'simulation' | 'detection' | 'fuzzing';
export const JOB_METHODS: JobMethod[] = ['simulation', 'detection', 'fuzzing'];
export const JOB_STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled', 'budget_exhausted'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
const FINISHED: JobStatus[] = ['done', 'failed', 'cancelled', 'budget_exhausted'];

/** What a job scores with; the API key is never stored (workers read it from their own config). */
export interface JobLlm {
  baseUrl: string | null;
  model: string | null;
  simulator: string | null;
}

export interface JobSpec {
  units: string[];
  method: JobMethod;
  llm: JobLlm;
  budgetTokens: number;
  concurrency: number;
  seed: number;
  maxAttempts: number;
  /** the configured prices now, kept with the job for its cost */
  prices: LlmPrices;
}

export interface JobRow {
  id: string;
  status: JobStatus;
  method: JobMethod;
  llm: JobLlm;
  budgetTokens: number;
  concurrency: number;
  seed: number;
  maxAttempts: number;
  unitsTotal: number;
  unitsDone: number;
  unitsFailed: number;
  promptTokens: number;
  completionTokens: number;
  llmCalls: number;
  prices: LlmPrices;
  /** US dollars spent so far: the job's tokens at its prices */
  costUsd: number;
  error: string | null;
  /** ISO 8601, UTC, microseconds (what job lists are ordered by) */
  createdAt: string;
}

export interface UnitClaim {
  jobId: string;
  position: number;
  unit: string;
  attempts: number;
  token: string;
}

export async function createJob(sql: Sql, spec: JobSpec): Promise<string> {
  const id = randomUUID();
  await sql.begin(async (tx) => {
    await tx`
      INSERT INTO scoring_jobs (id, method, llm, budget_tokens, concurrency, seed, max_attempts, units_total,
        price_prompt_usd_per_mtok, price_completion_usd_per_mtok)
      VALUES (${id}, ${spec.method}, ${tx.json(spec.llm as never)}, ${spec.budgetTokens}, ${spec.concurrency},
        ${spec.seed}, ${spec.maxAttempts}, ${spec.units.length}, ${spec.prices.promptUsdPerMillion},
        ${spec.prices.completionUsdPerMillion})`;
    // In chunks: a job over a whole SAE has tens of thousands of units.
    for (let start = 0; start < spec.units.length; start += 5000) {
      const rows = spec.units
        .slice(start, start + 5000)
        .map((unit, i) => ({ job_id: id, position: start + i, unit }));
      await tx`INSERT INTO scoring_job_units ${tx(rows, 'job_id', 'position', 'unit')}`;
    }
  });
  return id;
}

export async function getJob(sql: Sql, id: string): Promise<JobRow> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) throw new UserInputError(`job id "${id}" is not a job id (a UUID)`);
  const [row] = await sql<Record<string, unknown>[]>`
    SELECT *, ${sql.unsafe(CREATED_AT_ISO)} FROM scoring_jobs WHERE id = ${id}`;
  if (!row) throw new LoupeError(`no scoring job ${id}`, 'NOT_FOUND');
  return toJobRow(row);
}

/** A page of jobs, newest first, optionally of one status (see listJobRows). */
export async function listJobs(
  sql: Sql,
  request: JobListRequest,
): Promise<{ jobs: JobRow[]; nextPageToken: string; total: number }> {
  const page = await listJobRows(sql, 'scoring_jobs', request, JOB_STATUSES, 'scoring');
  return { jobs: page.rows.map(toJobRow), nextPageToken: page.nextPageToken, total: page.total };
}

/**
 * Where each job's units come from: the "model/hook" or "model/sae-id" part of their ids, sorted (one
 * query for a page of jobs; a job over a whole SAE has one source however many units it has).
 */
export async function jobSources(sql: Sql, ids: string[]): Promise<Map<string, string[]>> {
  const sources = new Map<string, string[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return sources;
  const rows = await sql<{ job_id: string; source: string }[]>`
    SELECT DISTINCT job_id, regexp_replace(unit, '/[^/]*$', '') AS source
    FROM scoring_job_units WHERE job_id = ANY(${ids}::uuid[])
    ORDER BY job_id, source`;
  for (const row of rows) sources.get(row.job_id)?.push(row.source);
  return sources;
}

function toJobRow(row: Record<string, unknown>): JobRow {
  const promptTokens = Number(row.prompt_tokens);
  const completionTokens = Number(row.completion_tokens);
  const prices: LlmPrices = {
    promptUsdPerMillion: Number(row.price_prompt_usd_per_mtok),
    completionUsdPerMillion: Number(row.price_completion_usd_per_mtok),
  };
  return {
    id: row.id as string,
    status: row.status as JobStatus,
    method: row.method as JobMethod,
    llm: row.llm as JobLlm,
    budgetTokens: Number(row.budget_tokens),
    concurrency: row.concurrency as number,
    seed: Number(row.seed),
    maxAttempts: row.max_attempts as number,
    unitsTotal: row.units_total as number,
    unitsDone: row.units_done as number,
    unitsFailed: row.units_failed as number,
    promptTokens,
    completionTokens,
    llmCalls: row.llm_calls as number,
    prices,
    costUsd: llmCostUsd({ promptTokens, completionTokens }, prices),
    error: (row.error as string | null) ?? null,
    createdAt: row.created_at_iso as string,
  };
}

/** Jobs a worker should pick up: queued or running (a running job may have lost its worker). */
export async function activeJobIds(sql: Sql): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    SELECT id FROM scoring_jobs WHERE status IN ('queued', 'running') ORDER BY created_at`;
  return rows.map((r) => r.id);
}

export async function cancelJob(sql: Sql, id: string): Promise<JobRow> {
  await getJob(sql, id);
  await sql`
    UPDATE scoring_jobs SET status = 'cancelled', updated_at = now()
    WHERE id = ${id} AND status IN ('queued', 'running')`;
  return getJob(sql, id);
}

export async function setJobStatus(sql: Sql, id: string, status: JobStatus, error?: string): Promise<void> {
  // A finished job stays finished: a late worker cannot turn "cancelled" back into "running".
  const changed = await sql`
    UPDATE scoring_jobs SET status = ${status}, error = ${error ?? null}, updated_at = now()
    WHERE id = ${id} AND status NOT IN ${sql(FINISHED)}`;
  if (changed.count && FINISHED.includes(status)) recordJobFinished('scoring_jobs', status);
}

/**
 * Claims the next unit: a pending one, one whose holder's lease ran out (a crashed or restarted worker
 * elsewhere), or one held by a process of this host that no longer exists. SKIP LOCKED lets many
 * workers, in one process or many, claim from the same job. Each claim gets a fresh token; only that
 * token can complete the unit.
 */
export async function claimUnit(
  sql: Sql,
  jobId: string,
  leaseMs: number,
  worker = workerName(),
): Promise<UnitClaim | null> {
  const holders = await sql<{ worker: string }[]>`
    SELECT DISTINCT worker FROM scoring_job_units
    WHERE job_id = ${jobId} AND status = 'running' AND worker IS NOT NULL`;
  const dead = holders.map((h) => h.worker).filter(isDeadLocalWorker);
  const token = randomUUID();
  const [row] = await sql<{ position: number; unit: string; attempts: number }[]>`
    UPDATE scoring_job_units u
    SET status = 'running', attempts = u.attempts + 1, claim_token = ${token}, worker = ${worker},
      lease_until = now() + ${leaseMs} * interval '1 millisecond'
    FROM (
      SELECT position FROM scoring_job_units
      WHERE job_id = ${jobId}
        AND (status = 'pending'
             OR (status = 'running' AND (lease_until < now() OR worker = ANY(${dead}::text[]))))
      ORDER BY position
      LIMIT 1
      FOR UPDATE SKIP LOCKED
    ) next
    WHERE u.job_id = ${jobId} AND u.position = next.position
    RETURNING u.position, u.unit, u.attempts`;
  return row ? { jobId, position: row.position, unit: row.unit, attempts: row.attempts, token } : null;
}

/**
 * Stores the unit's explanation and marks it done in one transaction, only while the claim is still
 * ours; returns false (and stores nothing) when another worker took the unit over.
 */
export async function completeUnit(
  sql: Sql,
  claim: UnitClaim,
  result: ScoredExplanation,
  embedding?: number[],
): Promise<boolean> {
  return sql.begin(async (tx) => {
    const [held] = await tx`
      SELECT 1 FROM scoring_job_units
      WHERE job_id = ${claim.jobId} AND position = ${claim.position} AND claim_token = ${claim.token}
        AND status = 'running'
      FOR UPDATE`;
    if (!held) return false;
    const explanationId = await saveExplanation(tx as unknown as Sql, result, embedding);
    await tx`
      UPDATE scoring_job_units SET status = 'done', explanation_id = ${explanationId}, lease_until = NULL
      WHERE job_id = ${claim.jobId} AND position = ${claim.position}`;
    await addUsage(tx as unknown as Sql, claim.jobId, result.usage, { done: 1 });
    return true;
  });
}

/** A failed attempt: back to pending while attempts remain, else failed for good. Usage still counts. */
export async function failUnit(
  sql: Sql,
  claim: UnitClaim,
  error: string,
  maxAttempts: number,
  usage: UsageTotals,
): Promise<void> {
  await sql.begin(async (tx) => {
    const final = claim.attempts >= maxAttempts;
    const [row] = await tx`
      UPDATE scoring_job_units SET status = ${final ? 'failed' : 'pending'}, error = ${error}, lease_until = NULL
      WHERE job_id = ${claim.jobId} AND position = ${claim.position} AND claim_token = ${claim.token}
        AND status = 'running'
      RETURNING 1`;
    if (row) await addUsage(tx as unknown as Sql, claim.jobId, usage, { failed: final ? 1 : 0 });
  });
}

async function addUsage(
  sql: Sql,
  jobId: string,
  usage: UsageTotals,
  counts: { done?: number; failed?: number },
) {
  await sql`
    UPDATE scoring_jobs SET
      units_done = units_done + ${counts.done ?? 0},
      units_failed = units_failed + ${counts.failed ?? 0},
      prompt_tokens = prompt_tokens + ${usage.promptTokens},
      completion_tokens = completion_tokens + ${usage.completionTokens},
      llm_calls = llm_calls + ${usage.calls},
      updated_at = now()
    WHERE id = ${jobId}`;
}

/** Units not finished yet (pending, or running under a live or expired lease). */
export async function unfinishedUnits(sql: Sql, jobId: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM scoring_job_units
    WHERE job_id = ${jobId} AND status IN ('pending', 'running')`;
  return row.n;
}

export async function jobUnits(
  sql: Sql,
  jobId: string,
): Promise<
  { unit: string; status: string; attempts: number; explanationId: string | null; error: string | null }[]
> {
  const rows = await sql<
    { unit: string; status: string; attempts: number; explanation_id: string | null; error: string | null }[]
  >`SELECT unit, status, attempts, explanation_id, error FROM scoring_job_units WHERE job_id = ${jobId} ORDER BY position`;
  return rows.map((r) => ({
    unit: r.unit,
    status: r.status,
    attempts: r.attempts,
    explanationId: r.explanation_id,
    error: r.error,
  }));
}

/** One line of a job's JSONL export: the unit, its state, and its explanation and score when done. */
export interface JobResultLine {
  unit: string;
  status: string;
  attempts: number;
  error: string | null;
  explanation: string | null;
  method: string | null;
  score: number | null;
  top_only: number | null;
  random_only: number | null;
  ci: [number, number] | null;
  explainer_model: string | null;
  simulator_model: string | null;
  prompt_version: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  llm_calls: number;
  provenance: unknown;
}

/** Every unit of a job in order, streamed in pages so a job over a whole SAE is not held in memory. */
export async function* jobResults(sql: Sql, jobId: string, pageSize = 1000): AsyncGenerator<JobResultLine> {
  await getJob(sql, jobId);
  for (let from = 0; ; from += pageSize) {
    const rows = await sql<Record<string, unknown>[]>`
      SELECT u.unit, u.status, u.attempts, u.error, e.explanation, e.method, e.score, e.top_only, e.random_only,
        e.ci_low, e.ci_high, e.explainer_model, e.simulator_model, e.prompt_version, e.prompt_tokens,
        e.completion_tokens, e.llm_calls, e.provenance
      FROM scoring_job_units u LEFT JOIN explanations e ON e.id = u.explanation_id
      WHERE u.job_id = ${jobId} AND u.position >= ${from} AND u.position < ${from + pageSize}
      ORDER BY u.position`;
    if (rows.length === 0) return;
    for (const r of rows)
      yield {
        unit: r.unit as string,
        status: r.status as string,
        attempts: r.attempts as number,
        error: (r.error as string | null) ?? null,
        explanation: (r.explanation as string | null) ?? null,
        method: (r.method as string | null) ?? null,
        score: (r.score as number | null) ?? null,
        top_only: (r.top_only as number | null) ?? null,
        random_only: (r.random_only as number | null) ?? null,
        ci: r.ci_low === null || r.ci_low === undefined ? null : [r.ci_low as number, r.ci_high as number],
        explainer_model: (r.explainer_model as string | null) ?? null,
        simulator_model: (r.simulator_model as string | null) ?? null,
        prompt_version: (r.prompt_version as string | null) ?? null,
        prompt_tokens: Number(r.prompt_tokens ?? 0),
        completion_tokens: Number(r.completion_tokens ?? 0),
        llm_calls: (r.llm_calls as number | null) ?? 0,
        provenance: r.provenance ?? null,
      };
  }
}
