import { randomUUID } from 'node:crypto';
import { UserInputError } from '@loupe/common';
import {
  CREATED_AT_ISO,
  claimJobRow,
  finishJobRow,
  type JobListRequest,
  keepJobAlive,
  listJobRows,
  type Sql,
  STALE_AFTER_SECONDS,
} from '@loupe/common/db';
import { recordJobFinished } from '@loupe/common/metrics';

export const JOB_STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export type JobPhase = 'capture' | 'records' | 'done';

export interface CaptureJobRow {
  id: string;
  status: JobStatus;
  phase: JobPhase;
  model: string;
  modelSha256: string;
  dataset: string;
  hooks: string[];
  maxTokens: number;
  params: CaptureParams;
  paramsKey: string;
  totalWindows: number;
  totalTokens: number;
  windowsSha256: string;
  worker: string | null;
  windowsDone: number;
  tokensDone: number;
  attempts: number;
  error: string | null;
  /** ISO 8601, UTC, microseconds (what job lists are ordered by) */
  createdAt: string;
}

export interface CaptureParams {
  windowLength: number;
  minWindowLength: number;
  windowsPerShard: number;
  /** shards per work item (the unit workers lease; each was once a checkpoint, hence the name) */
  shardsPerCheckpoint: number;
  /** hooks per work item, 0 for all of them (jobs made before work items have none: all) */
  hooksPerItem: number;
  recordSeed: number;
}

/** A worker that has not written a heartbeat for this long is taken to be dead. */
export { STALE_AFTER_SECONDS };

const TABLE = 'capture_jobs';

const COLUMNS = `id, status, phase, model, model_sha256, dataset, hooks, max_tokens, params, params_key, total_windows,
  total_tokens, windows_sha256, worker, windows_done, tokens_done, attempts, error, ${CREATED_AT_ISO}`;

function toRow(r: Record<string, unknown>): CaptureJobRow {
  return {
    id: r.id as string,
    status: r.status as JobStatus,
    phase: r.phase as JobPhase,
    model: r.model as string,
    modelSha256: r.model_sha256 as string,
    dataset: r.dataset as string,
    hooks: r.hooks as string[],
    maxTokens: Number(r.max_tokens),
    params: r.params as CaptureParams,
    paramsKey: r.params_key as string,
    totalWindows: Number(r.total_windows),
    totalTokens: Number(r.total_tokens),
    windowsSha256: r.windows_sha256 as string,
    worker: (r.worker as string | null) ?? null,
    windowsDone: Number(r.windows_done),
    tokensDone: Number(r.tokens_done),
    attempts: Number(r.attempts),
    error: (r.error as string | null) ?? null,
    createdAt: r.created_at_iso as string,
  };
}

/**
 * Inserts a job unless an unfinished one with the same parameters exists (then returns that one), so
 * two identical commands started at once end up sharing one job.
 */
export async function createJob(
  sql: Sql,
  job: Omit<
    CaptureJobRow,
    'id' | 'status' | 'phase' | 'worker' | 'windowsDone' | 'tokensDone' | 'attempts' | 'error' | 'createdAt'
  >,
): Promise<{ job: CaptureJobRow; created: boolean }> {
  const [row] = await sql`
    INSERT INTO capture_jobs (id, model, model_sha256, dataset, hooks, max_tokens, params, params_key, total_windows,
                              total_tokens, windows_sha256)
    VALUES (${randomUUID()}, ${job.model}, ${job.modelSha256}, ${job.dataset}, ${job.hooks}, ${job.maxTokens},
            ${sql.json(job.params as unknown as Parameters<typeof sql.json>[0])}, ${job.paramsKey}, ${job.totalWindows},
            ${job.totalTokens}, ${job.windowsSha256})
    ON CONFLICT (params_key) WHERE status IN ('queued', 'running', 'failed') DO NOTHING
    RETURNING ${sql.unsafe(COLUMNS)}`;
  if (row) return { job: toRow(row), created: true };
  const existing = await findResumable(sql, job.paramsKey);
  if (!existing) throw new Error('capture job vanished between insert and lookup');
  if (existing.status !== 'failed') return { job: existing, created: false };
  // asked again after a failure: queue it once more (it resumes from its last checkpoint); a job that
  // cannot succeed fails again, but only when someone asks, so nothing loops on its own
  const [requeued] = await sql`
    UPDATE capture_jobs SET status = 'queued', error = NULL, updated_at = now()
    WHERE id = ${existing.id} AND status = 'failed' RETURNING ${sql.unsafe(COLUMNS)}`;
  return { job: requeued ? toRow(requeued) : existing, created: false };
}

/** Takes a job out of the resumable set for good (its dataset or files no longer match). */
export async function retireJob(sql: Sql, id: string, reason: string): Promise<void> {
  await sql`UPDATE capture_jobs SET status = 'cancelled', error = ${reason}, finished_at = now(), updated_at = now() WHERE id = ${id}`;
}

export async function getJob(sql: Sql, id: string): Promise<CaptureJobRow> {
  const [row] = await sql`SELECT ${sql.unsafe(COLUMNS)} FROM capture_jobs WHERE id = ${id}`;
  if (!row) throw new UserInputError(`unknown capture job ${id}`, 'NOT_FOUND');
  return toRow(row);
}

/** A page of jobs, newest first, optionally of one status (see listJobRows). */
export async function listJobs(
  sql: Sql,
  request: JobListRequest,
): Promise<{ jobs: CaptureJobRow[]; nextPageToken: string; total: number }> {
  const page = await listJobRows(sql, TABLE, request, JOB_STATUSES, 'capture');
  return { jobs: page.rows.map(toRow), nextPageToken: page.nextPageToken, total: page.total };
}

/** The newest unfinished job with the same parameters: rerunning a killed command resumes it. */
export async function findResumable(sql: Sql, paramsKey: string): Promise<CaptureJobRow | null> {
  const [row] = await sql`
    SELECT ${sql.unsafe(COLUMNS)} FROM capture_jobs
    WHERE params_key = ${paramsKey} AND status IN ('queued', 'running', 'failed')
    ORDER BY created_at DESC LIMIT 1`;
  return row ? toRow(row) : null;
}

/**
 * Takes a job for this worker if it is queued, failed, or running under a worker whose heartbeat went
 * stale or that the caller knows to be dead (same host, process gone); see claimJobRow.
 */
export async function claimJob(
  sql: Sql,
  id: string,
  worker: string,
  options: { deadWorker?: string } = {},
): Promise<CaptureJobRow | null> {
  const row = await claimJobRow(sql, TABLE, COLUMNS, id, worker, options);
  return row ? toRow(row) : null;
}

/**
 * Puts a queued (or failed, when asked again) job into the running state that work items are claimed
 * under; the job row gets a worker only for the records phase (see runCaptureJob).
 */
export async function startJob(sql: Sql, id: string): Promise<void> {
  await sql`
    UPDATE capture_jobs SET status = 'running', worker = NULL, heartbeat_at = NULL, attempts = attempts + 1,
           error = NULL, updated_at = now()
    WHERE id = ${id} AND status IN ('queued', 'failed')`;
}

/** Fails a running job whoever holds it (a work item failed: the other workers stop at their next item). */
export async function failJob(sql: Sql, id: string, error: string): Promise<void> {
  const failed = await sql`
    UPDATE capture_jobs SET status = 'failed', error = ${error}, heartbeat_at = NULL, finished_at = now(),
           updated_at = now()
    WHERE id = ${id} AND status = 'running'`;
  if (failed.count) recordJobFinished(TABLE, 'failed');
}

/** Records a checkpoint; refuses (returns false) if another worker has taken the job over. */
export async function checkpoint(
  sql: Sql,
  id: string,
  worker: string,
  progress: { windowsDone: number; tokensDone: number; phase: JobPhase },
): Promise<boolean> {
  const rows = await sql`
    UPDATE capture_jobs SET windows_done = ${progress.windowsDone}, tokens_done = ${progress.tokensDone},
           phase = ${progress.phase}, heartbeat_at = now(), updated_at = now()
    WHERE id = ${id} AND worker = ${worker} AND status = 'running'
    RETURNING id`;
  return rows.length === 1;
}

/** Keeps the claim alive between checkpoints (a long records phase, a slow shard). */
export function keepAlive(sql: Sql, id: string, worker: string): () => void {
  return keepJobAlive(sql, TABLE, id, worker);
}

export async function finishJob(
  sql: Sql,
  id: string,
  worker: string,
  outcome: { error?: string },
): Promise<void> {
  await finishJobRow(sql, TABLE, id, worker, outcome);
}
