import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { UserInputError } from '@loupe/common';
import {
  CREATED_AT_ISO,
  claimJobRow,
  finishJobRow,
  type JobListRequest,
  keepJobAlive,
  listJobRows,
  type Sql,
} from '@loupe/common/db';
import type { ListTrainingJobsResponse, TrainingJob__Output, TrainRequest } from '@loupe/common/grpc';
import {
  DEFAULT_ARCHITECTURE,
  isTrainableArchitecture,
  TRAINABLE_ARCHITECTURES,
  type TrainableArchitecture,
} from '../architectures/registry.js';
import { settingsHash } from '../run/checkpoint.js';
import { DEFAULT_CHECKPOINT_EVERY } from '../run/train-sae.js';
import { checkSaeId, saeExists } from '../store/sae-store.js';

export const TRAINING_JOB_STATUSES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type TrainingJobStatus = (typeof TRAINING_JOB_STATUSES)[number];
export type TrainingJobPhase = 'train' | 'evaluate' | 'features' | 'done';

/** A TrainRequest with every default filled in (the proto's 0 = default rules applied). */
export interface ResolvedTrainRequest {
  /** exactly one of the two */
  captureJobId: string | null;
  /** relative to $LOUPE_DATA_DIR (an absolute path is kept only if it lies inside it, checked on run) */
  activationsFile: string | null;
  hook: string | null;
  tensor: string | null;
  architecture: TrainableArchitecture;
  width: number;
  k: number;
  /** null = the architecture's default */
  sparsity: number | null;
  steps: number;
  batchSize: number;
  /** null = sparsify's width-scaled default */
  lr: number | null;
  seed: number;
  checkpointEvery: number;
}

export interface TrainingJobRow {
  id: string;
  status: TrainingJobStatus;
  phase: TrainingJobPhase;
  request: ResolvedTrainRequest;
  paramsKey: string;
  saeId: string;
  step: number;
  steps: number;
  tokens: number;
  loss: number | null;
  l0: number | null;
  deadFraction: number | null;
  denseFraction: number | null;
  activityWindowTokens: number | null;
  checkpointStep: number;
  worker: string | null;
  attempts: number;
  error: string | null;
  /** ISO 8601, UTC, microseconds (what job lists are ordered by) */
  createdAt: string;
}

export const TRAINING_JOBS_TABLE = 'training_jobs';
const COLUMNS = `id, status, phase, request, params_key, sae_id, step, steps, tokens, loss, l0, dead_fraction,
  dense_fraction, activity_window_tokens, checkpoint_step, worker, attempts, error, ${CREATED_AT_ISO}`;

const DEFAULT_K = 32;
const DEFAULT_BATCH = 4096;

function num(v: unknown): number | null {
  return v === null || v === undefined ? null : Number(v);
}

function toRow(r: Record<string, unknown>): TrainingJobRow {
  return {
    id: r.id as string,
    status: r.status as TrainingJobStatus,
    phase: r.phase as TrainingJobPhase,
    request: r.request as ResolvedTrainRequest,
    paramsKey: r.params_key as string,
    saeId: r.sae_id as string,
    step: Number(r.step),
    steps: Number(r.steps),
    tokens: Number(r.tokens),
    loss: num(r.loss),
    l0: num(r.l0),
    deadFraction: num(r.dead_fraction),
    denseFraction: num(r.dense_fraction),
    activityWindowTokens: num(r.activity_window_tokens),
    checkpointStep: Number(r.checkpoint_step),
    worker: (r.worker as string | null) ?? null,
    attempts: Number(r.attempts),
    error: (r.error as string | null) ?? null,
    createdAt: r.created_at_iso as string,
  };
}

/** The row as the proto's TrainingJob (the SAE id only once the job is done). */
export function toTrainingJob(row: TrainingJobRow): TrainingJob__Output {
  return {
    id: row.id,
    status: row.status,
    phase: row.phase,
    step: row.step,
    steps: row.steps,
    tokens: row.tokens,
    loss: row.loss ?? 0,
    l0: row.l0 ?? 0,
    deadFraction: row.deadFraction ?? 0,
    saeId: row.phase === 'done' ? row.saeId : '',
    error: row.error ?? '',
    checkpointStep: row.checkpointStep,
    createdAt: row.createdAt,
  };
}

function wholeField(value: number | string | undefined | null, field: string, fallback?: number): number {
  const n = Number(value ?? 0);
  if (n === 0 && fallback !== undefined) return fallback;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UserInputError(
      `${field} must be a whole number ≥ 1${fallback !== undefined ? ' (0 = default)' : ''}, got ${value}`,
    );
  return n;
}

/** Applies the proto's defaults and checks every field, naming what is wrong and what is allowed. */
export function resolveTrainRequest(request: TrainRequest): ResolvedTrainRequest {
  const capture = request.captureJobId || null;
  const file = request.activationsFile || null;
  if ((capture === null) === (file === null))
    throw new UserInputError('give exactly one of capture_job_id or activations_file');
  if (file !== null && path.normalize(file).split(path.sep).includes('..'))
    throw new UserInputError(`activations_file ${file} must lie inside the data directory (no "..")`);
  if (capture !== null && !/^[0-9a-f-]{36}$/i.test(capture))
    throw new UserInputError(`capture_job_id ${capture} is not a job id (a UUID)`);
  const architecture = request.architecture || DEFAULT_ARCHITECTURE;
  if (!isTrainableArchitecture(architecture))
    throw new UserInputError(
      `architecture ${architecture} is not trainable; use one of ${TRAINABLE_ARCHITECTURES.join(', ')}`,
    );
  const width = wholeField(request.width, 'width');
  const k = wholeField(request.k, 'k', DEFAULT_K);
  if (k > width) throw new UserInputError(`k ${k} is larger than width ${width}`);
  const sparsity = Number(request.sparsity ?? 0);
  if (!Number.isFinite(sparsity) || sparsity < 0)
    throw new UserInputError(`sparsity must be ≥ 0, got ${request.sparsity}`);
  const lr = Number(request.lr ?? 0);
  if (!Number.isFinite(lr) || lr < 0)
    throw new UserInputError(`lr must be ≥ 0 (0 = default), got ${request.lr}`);
  const seed = Number(request.seed ?? 0);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new UserInputError(`seed must be a whole number ≥ 0, got ${request.seed}`);
  return {
    captureJobId: capture,
    activationsFile: file,
    hook: request.hook || null,
    tensor: request.tensor || null,
    architecture,
    width,
    k,
    sparsity: sparsity === 0 ? null : sparsity,
    steps: wholeField(request.steps, 'steps'),
    batchSize: wholeField(request.batchSize, 'batch_size', DEFAULT_BATCH),
    lr: lr === 0 ? null : lr,
    seed,
    checkpointEvery: wholeField(request.checkpointEvery, 'checkpoint_every', DEFAULT_CHECKPOINT_EVERY),
  };
}

/**
 * Creates a training job unless an unfinished one with the same request exists (then returns that one),
 * so two identical requests share one job. The SAE id defaults to `sae-<job id>`.
 */
export async function createTrainingJob(sql: Sql, request: TrainRequest): Promise<TrainingJob__Output> {
  const resolved = resolveTrainRequest(request);
  const id = randomUUID();
  const saeId = request.saeId || `sae-${id}`;
  // checked here, at creation, so a bad id fails before any training
  checkSaeId(saeId);
  const paramsKey = settingsHash({ ...resolved, saeId: request.saeId || null });
  if (request.saeId) {
    if (await saeExists(sql, saeId))
      throw new UserInputError(`an SAE with id "${saeId}" is already in the library; pick another sae_id`);
  }
  const [row] = await sql`
    INSERT INTO training_jobs (id, request, params_key, sae_id, steps)
    VALUES (${id}, ${sql.json(resolved as unknown as Parameters<typeof sql.json>[0])}, ${paramsKey}, ${saeId}, ${resolved.steps})
    ON CONFLICT (params_key) WHERE status IN ('queued', 'running', 'failed') DO NOTHING
    RETURNING ${sql.unsafe(COLUMNS)}`;
  if (row) return toTrainingJob(toRow(row));
  const [existing] = await sql`
    SELECT ${sql.unsafe(COLUMNS)} FROM training_jobs
    WHERE params_key = ${paramsKey} AND status IN ('queued', 'running', 'failed')
    ORDER BY created_at DESC LIMIT 1`;
  if (!existing) throw new Error('training job vanished between insert and lookup');
  if (existing.status !== 'failed') return toTrainingJob(toRow(existing));
  // asked again after a failure: queue it once more (it resumes from its last checkpoint); a job that
  // cannot succeed fails again, but only when someone asks, so nothing loops on its own
  const [requeued] = await sql`
    UPDATE training_jobs SET status = 'queued', error = NULL, updated_at = now()
    WHERE id = ${existing.id} AND status = 'failed' RETURNING ${sql.unsafe(COLUMNS)}`;
  return toTrainingJob(toRow(requeued ?? existing));
}

export async function getTrainingJobRow(sql: Sql, id: string): Promise<TrainingJobRow> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) throw new UserInputError(`unknown training job ${id}`, 'NOT_FOUND');
  const [row] = await sql`SELECT ${sql.unsafe(COLUMNS)} FROM training_jobs WHERE id = ${id}`;
  if (!row) throw new UserInputError(`unknown training job ${id}`, 'NOT_FOUND');
  return toRow(row);
}

/** The job as the proto's TrainingJob. */
export async function getTrainingJob(sql: Sql, id: string): Promise<TrainingJob__Output> {
  return toTrainingJob(await getTrainingJobRow(sql, id));
}

/** A page of jobs as the proto's TrainingJobs, newest first, optionally of one status (see listJobRows). */
export async function listTrainingJobs(sql: Sql, request: JobListRequest): Promise<ListTrainingJobsResponse> {
  const page = await listJobRows(sql, TRAINING_JOBS_TABLE, request, TRAINING_JOB_STATUSES, 'training');
  return {
    jobs: page.rows.map((r) => toTrainingJob(toRow(r))),
    nextPageToken: page.nextPageToken,
    total: page.total,
  };
}

/**
 * Marks a queued, running or failed job cancelled (finished jobs stay as they are). A running worker
 * notices at its next progress write, which is guarded by status = 'running', and stops after that
 * step; its checkpoints stay on disk. A cancelled job leaves the resumable set, so asking for the same
 * training again starts a new job.
 */
export async function cancelTrainingJob(sql: Sql, id: string): Promise<TrainingJob__Output> {
  await getTrainingJobRow(sql, id);
  await sql`
    UPDATE training_jobs SET status = 'cancelled', error = 'cancelled on request', finished_at = now(), updated_at = now()
    WHERE id = ${id} AND status IN ('queued', 'running', 'failed')`;
  return getTrainingJob(sql, id);
}

/** Claims the job for `worker`; see claimJobRow for who may take it. */
export async function claimTrainingJob(
  sql: Sql,
  id: string,
  worker: string,
  options: { deadWorker?: string } = {},
): Promise<TrainingJobRow | null> {
  const row = await claimJobRow(sql, TRAINING_JOBS_TABLE, COLUMNS, id, worker, options);
  return row ? toRow(row) : null;
}

export interface TrainingJobProgress {
  step: number;
  tokens: number;
  loss: number;
  l0: number;
  deadFraction: number;
  denseFraction: number;
  activityWindowTokens: number;
  checkpointStep?: number;
}

/** Records progress (and heartbeat); false if another worker has taken the job over. */
export async function recordTrainingProgress(
  sql: Sql,
  id: string,
  worker: string,
  p: TrainingJobProgress,
): Promise<boolean> {
  const rows = await sql`
    UPDATE training_jobs SET step = ${p.step}, tokens = ${p.tokens}, loss = ${finite(p.loss)}, l0 = ${p.l0},
           dead_fraction = ${p.deadFraction}, dense_fraction = ${p.denseFraction},
           activity_window_tokens = ${p.activityWindowTokens},
           checkpoint_step = ${p.checkpointStep ?? sql`checkpoint_step`}, heartbeat_at = now(), updated_at = now()
    WHERE id = ${id} AND worker = ${worker} AND status = 'running'
    RETURNING id`;
  return rows.length === 1;
}

/** Moves a claimed job to its next phase; false if another worker has taken it over. */
export async function setTrainingPhase(
  sql: Sql,
  id: string,
  worker: string,
  phase: TrainingJobPhase,
): Promise<boolean> {
  const rows = await sql`
    UPDATE training_jobs SET phase = ${phase}, heartbeat_at = now(), updated_at = now()
    WHERE id = ${id} AND worker = ${worker} AND status = 'running'
    RETURNING id`;
  return rows.length === 1;
}

export function keepTrainingJobAlive(sql: Sql, id: string, worker: string): () => void {
  return keepJobAlive(sql, TRAINING_JOBS_TABLE, id, worker);
}

export async function finishTrainingJob(
  sql: Sql,
  id: string,
  worker: string,
  outcome: { error?: string },
): Promise<void> {
  await finishJobRow(sql, TRAINING_JOBS_TABLE, id, worker, outcome);
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
