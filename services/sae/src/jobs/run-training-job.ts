import fs from 'node:fs/promises';
import path from 'node:path';
import { type Device, UserInputError } from '@loupe/common';
import { isDeadLocalWorker, type Sql, workerName } from '@loupe/common/db';
import type { EvalMetrics__Output, TrainingJob__Output } from '@loupe/common/grpc';
import { readManifest } from '@loupe/model';
import { ActivationDataset } from '../data/activation-dataset.js';
import { type ActivationSource, openActivationSource } from '../data/activation-source.js';
import { computeFeatureRecords } from '../features/compute-records.js';
import type { Sae } from '../format/sae-model.js';
import { readSaeLens, writeSaeLens } from '../format/saelens.js';
import { evaluateHeldOut } from '../run/evaluate-held-out.js';
import { type TrainProgress, trainSae } from '../run/train-sae.js';
import { importSae } from '../store/sae-library.js';
import { findSae, saveTrainingOrigin } from '../store/sae-store.js';
import {
  claimTrainingJob,
  finishTrainingJob,
  getTrainingJob,
  getTrainingJobRow,
  keepTrainingJobAlive,
  type ResolvedTrainRequest,
  recordTrainingProgress,
  setTrainingPhase,
  type TrainingJobRow,
} from './training-job-store.js';

/**
 * Settings a job takes from the service rather than the request. Normalisation is on (GPT-2's residual
 * norms grow with depth; the scale is folded into the saved weights), a small tail is held out for the
 * metrics, and the dead/dense window is sparsify's 10M tokens.
 */
export const TRAINING_JOB_DEFAULTS = {
  shuffleCapacity: 65_536,
  heldOutFraction: 0.02,
  normaliseVectors: 65_536,
  deadWindowTokens: 10_000_000,
  evalVectors: 8192,
};

export interface RunTrainingJobOptions {
  /** $LOUPE_DATA_DIR: activations files are relative to it; checkpoints go to <dataDir>/sae-jobs/<id>/ */
  dataDir: string;
  /** default host:pid, so a worker on the same host can tell when this one died */
  worker?: string;
  device: Device;
  intraOpThreads: number;
  /** the service its sessions are counted under (see openSession) */
  owner?: string;
  onProgress?: (progress: TrainProgress) => void;
  /** overrides of TRAINING_JOB_DEFAULTS (tests use small windows and buffers) */
  defaults?: Partial<typeof TRAINING_JOB_DEFAULTS>;
}

/** Progress rows written at most this often (plus at every checkpoint and phase change). */
const PROGRESS_EVERY_MS = 1000;

export function trainingJobDir(dataDir: string, id: string): string {
  return path.join(dataDir, 'sae-jobs', id);
}

/**
 * Runs (or resumes) a training job to the end: claims it, trains with checkpoints under
 * <dataDir>/sae-jobs/<id>/checkpoints (resuming from the newest after a crash), evaluates on the held-out
 * tail, puts the SAE into the library with its features and metrics, and finishes the row. A job held by
 * a live worker is refused; one held by a dead process on this host, or whose heartbeat is stale, is
 * taken over. A failure marks the job failed (resumable) and is rethrown.
 */
export async function runTrainingJob(
  sql: Sql,
  id: string,
  options: RunTrainingJobOptions,
): Promise<TrainingJob__Output> {
  const worker = options.worker ?? workerName();
  const current = await getTrainingJobRow(sql, id);
  if (current.status === 'done' || current.status === 'cancelled') return getTrainingJob(sql, id);
  const job =
    (await claimTrainingJob(sql, id, worker)) ??
    (isDeadLocalWorker(current.worker)
      ? await claimTrainingJob(sql, id, worker, { deadWorker: current.worker ?? undefined })
      : null);
  if (!job)
    throw new UserInputError(
      `training job ${id} is being run by ${current.worker ?? 'another worker'}; it can be taken over once that worker stops sending heartbeats`,
      'UNAVAILABLE',
    );
  const stopHeartbeat = keepTrainingJobAlive(sql, id, worker);
  try {
    await runClaimed(sql, job, worker, options);
    await finishTrainingJob(sql, id, worker, {});
  } catch (error) {
    // cancelled while running (CancelTrainingJob): the lost claim is the stop signal, not a failure
    if (error instanceof LostClaim && (await getTrainingJobRow(sql, id)).status === 'cancelled')
      return getTrainingJob(sql, id);
    await finishTrainingJob(sql, id, worker, { error: (error as Error).message }).catch(() => {});
    throw error;
  } finally {
    stopHeartbeat();
  }
  return getTrainingJob(sql, id);
}

class LostClaim extends Error {
  constructor(id: string) {
    super(`training job ${id} was taken over by another worker`);
  }
}

async function runClaimed(sql: Sql, job: TrainingJobRow, worker: string, options: RunTrainingJobOptions) {
  const defaults = { ...TRAINING_JOB_DEFAULTS, ...options.defaults };
  const r = job.request;
  const dir = trainingJobDir(options.dataDir, job.id);
  const saeDir = path.join(dir, 'sae');
  const source = await openSource(r, options.dataDir);
  const held = (s: boolean) => {
    if (!s) throw new LostClaim(job.id);
  };

  let sae: Sae | undefined;
  if (job.phase === 'train') {
    // Progress goes to the row between steps without holding training up: writes are chained (never
    // two at once), sent at most every PROGRESS_EVERY_MS and at each checkpoint; a write that finds the
    // job taken over stops training at the next step.
    let checkpointStep = job.checkpointStep;
    let latest: TrainProgress | null = null;
    let lastWrite = 0;
    let lost = false;
    let failure: Error | null = null;
    let writes: Promise<unknown> = Promise.resolve();
    const write = (p: TrainProgress) => {
      lastWrite = Date.now();
      const entry = {
        step: p.step,
        tokens: p.tokens,
        loss: p.loss,
        l0: p.l0,
        deadFraction: p.deadFraction,
        denseFraction: p.denseFraction,
        activityWindowTokens: Math.min(defaults.deadWindowTokens, p.tokens),
        checkpointStep,
      };
      writes = writes
        .then(() => recordTrainingProgress(sql, job.id, worker, entry))
        .then(
          (ok) => {
            if (!ok) lost = true;
          },
          (error: Error) => {
            failure = error;
          },
        );
      return writes;
    };
    const result = await trainSae(source, {
      architecture: r.architecture,
      width: r.width,
      k: r.k,
      sparsity: r.sparsity ?? undefined,
      steps: r.steps,
      batchSize: r.batchSize,
      lr: r.lr ?? undefined,
      seed: r.seed,
      shuffleCapacity: defaults.shuffleCapacity,
      heldOutFraction: defaults.heldOutFraction,
      normaliseVectors: defaults.normaliseVectors,
      deadWindowTokens: defaults.deadWindowTokens,
      device: options.device,
      intraOpThreads: options.intraOpThreads,
      owner: options.owner,
      checkpointDir: path.join(dir, 'checkpoints'),
      checkpointEvery: r.checkpointEvery,
      onProgress: (p) => {
        if (lost) throw new LostClaim(job.id);
        if (failure) throw failure;
        latest = p;
        options.onProgress?.(p);
        if (Date.now() - lastWrite >= PROGRESS_EVERY_MS) void write(p);
      },
      onCheckpoint: (step) => {
        checkpointStep = step;
        if (latest) void write(latest);
      },
    });
    await write(latest ?? result.final);
    if (failure) throw failure;
    held(!lost);
    await writeSaeLens(saeDir, result.sae, {
      trained_by: 'loupe sae training job',
      training_job_id: job.id,
      steps: r.steps,
      batch_size: r.batchSize,
      lr: result.lr,
      seed: r.seed,
    });
    held(await setTrainingPhase(sql, job.id, worker, 'evaluate'));
    sae = result.sae;
  } else if (job.phase === 'evaluate') {
    sae = await readSaeLens(saeDir);
  }

  if (sae) {
    const fresh = await getTrainingJobRow(sql, job.id);
    const metrics = await heldOutMetrics(sae, source, r, defaults, fresh);
    await importSae(sql, options.dataDir, saeDir, { id: job.saeId });
    await saveTrainingOrigin(sql, job.saeId, {
      trainedAs: r.architecture,
      trainingJobId: job.id,
      metrics: metrics ?? null,
    });
    held(await setTrainingPhase(sql, job.id, worker, 'features'));
  }

  // Feature statistics and records need windows of tokens, which only a capture job's shards carry; an
  // SAE trained on a bare file of vectors has its decoder directions (importSae) and no records.
  if (r.captureJobId) {
    await computeFeatureRecords(sql, options.dataDir, job.saeId, capturedActivations(options.dataDir, r), {
      device: options.device,
      intraOpThreads: options.intraOpThreads,
      owner: options.owner,
      modelDir: await logitModelDir(sql, options.dataDir, job.saeId),
    });
  }
}

function capturedActivations(dataDir: string, r: ResolvedTrainRequest): string {
  return path.join(path.resolve(dataDir), 'capture', r.captureJobId ?? '');
}

/**
 * The converted model under <dataDir>/models that the SAE names, for its features' logit tokens; none
 * when it is not there or the SAE does not read the residual stream (logit tokens need d_in = d_model).
 */
async function logitModelDir(sql: Sql, dataDir: string, saeId: string): Promise<string | undefined> {
  const sae = await findSae(sql, saeId);
  if (!/^[A-Za-z0-9._-]+$/.test(sae.model)) return undefined; // 'unknown', or not a models/ folder name
  const dir = path.join(dataDir, 'models', sae.model);
  const manifest = await readManifest(dir).catch(() => null);
  return manifest?.dims.dModel === sae.dIn ? dir : undefined;
}

/** Activations of the request: a capture job's folder (shards of one hook) or a file in the data dir. */
async function openSource(r: ResolvedTrainRequest, dataDir: string): Promise<ActivationSource> {
  const root = path.resolve(dataDir);
  if (r.captureJobId) {
    const folder = path.join(root, 'capture', r.captureJobId);
    await fs.access(folder).catch(() => {
      throw new UserInputError(
        `capture job ${r.captureJobId} has no activations under ${folder}`,
        'NOT_FOUND',
      );
    });
    return openActivationSource(folder, { hook: r.hook ?? undefined, tensor: r.tensor ?? undefined });
  }
  const file = path.resolve(root, r.activationsFile ?? '');
  if (path.relative(root, file).startsWith('..'))
    throw new UserInputError(`activations_file ${r.activationsFile} is outside the data directory ${root}`);
  return openActivationSource(file, { hook: r.hook ?? undefined, tensor: r.tensor ?? undefined });
}

/** EvalMetrics on the held-out tail (raw activations: the saved weights have the scale folded in). */
async function heldOutMetrics(
  sae: Sae,
  source: ActivationSource,
  r: ResolvedTrainRequest,
  defaults: typeof TRAINING_JOB_DEFAULTS,
  row: TrainingJobRow,
): Promise<EvalMetrics__Output | null> {
  const dataset = new ActivationDataset(source, {
    batchSize: r.batchSize,
    shuffleCapacity: 1,
    seed: r.seed,
    heldOutFraction: defaults.heldOutFraction,
  });
  const m = await evaluateHeldOut(sae, dataset, defaults.evalVectors);
  if (!m) return null;
  return {
    vectors: m.vectors,
    l0: m.l0,
    mse: m.mse,
    fvu: m.fvu,
    explainedVariance: m.explainedVariance,
    explainedVarianceSaelens: m.explainedVarianceSaelens,
    cosine: m.cosine,
    // dead and dense come from training, over its last window of tokens
    deadFraction: row.deadFraction ?? 0,
    denseFraction: row.denseFraction ?? 0,
    activityWindowTokens: row.activityWindowTokens ?? 0,
  };
}
