import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isNeuronHook, requireShardableHook, UserInputError } from '@loupe/common';
import { isDeadLocalWorker, retryWhileUnavailable, type Sql } from '@loupe/common/db';
import type { Gpt2Runner } from '@loupe/model';
import { captureJobDir, cutWindows, DEFAULT_DATASET, readDataset, type Window } from '@loupe/records';
import { runItem } from './capture-item.js';
import {
  type CaptureJobRow,
  type CaptureParams,
  checkpoint,
  claimJob,
  createJob,
  failJob,
  findResumable,
  finishJob,
  getJob,
  keepAlive,
  retireJob,
  startJob,
} from './job-store.js';
import { recordsPhase, removeItemStates } from './records-phase.js';
import {
  claimItem,
  completeItem,
  ensureItems,
  hasClaimableWork,
  keepItemAlive,
  openItems,
  releaseItem,
  windowsPerItem,
} from './work-items.js';

export const DEFAULT_CAPTURE_PARAMS: CaptureParams = {
  windowLength: 64,
  minWindowLength: 16,
  windowsPerShard: 64,
  shardsPerCheckpoint: 4,
  hooksPerItem: 0,
  recordSeed: 0,
};

export interface CaptureRequest {
  dataset: string;
  hooks: string[];
  maxTokens: number;
  params?: Partial<CaptureParams>;
}

export interface CaptureProgress {
  jobId: string;
  phase: 'capture' | 'records' | 'done';
  windowsDone: number;
  totalWindows: number;
  tokensDone: number;
  totalTokens: number;
}

/**
 * Creates the job for a capture request, or finds the unfinished job with identical parameters, which
 * is how re-running a killed `loupe capture` resumes it.
 */
export async function prepareCaptureJob(
  sql: Sql,
  runner: Gpt2Runner,
  request: CaptureRequest,
): Promise<{ job: CaptureJobRow; resumed: boolean; windows?: Window[] }> {
  if (request.hooks.length === 0) throw new UserInputError('name at least one hook to capture');
  for (const hook of request.hooks) requireShardableHook(hook, runner.manifest.dims.nLayer, 'a capture job');
  const params = checkParams(
    { ...DEFAULT_CAPTURE_PARAMS, ...request.params },
    runner.manifest.dims.nPositions,
  );
  if (!Number.isInteger(request.maxTokens) || request.maxTokens < params.minWindowLength) {
    throw new UserInputError(
      `max tokens must be a whole number ≥ ${params.minWindowLength} (one window), got ${request.maxTokens}`,
    );
  }
  // a path is stored absolute, so resuming from another working directory finds the same data
  const dataset = request.dataset === DEFAULT_DATASET ? DEFAULT_DATASET : path.resolve(request.dataset);
  const hooks = [...new Set(request.hooks)].sort();
  const key = createHash('sha256')
    .update(JSON.stringify([runner.manifest.source.sha256, dataset, hooks, request.maxTokens, params]))
    .digest('hex');
  const existing = await findResumable(sql, key);
  if (existing) return { job: existing, resumed: true };
  const windows = await planWindows(runner, dataset, request.maxTokens, params);
  if (windows.length === 0) {
    throw new UserInputError(
      `dataset "${request.dataset}" gives no window of ≥ ${params.minWindowLength} tokens`,
    );
  }
  const { job, created } = await createJob(sql, {
    model: runner.name,
    modelSha256: runner.manifest.source.sha256,
    dataset,
    hooks,
    maxTokens: request.maxTokens,
    params,
    paramsKey: key,
    totalWindows: windows.length,
    totalTokens: windows.reduce((n, w) => n + w.ids.length, 0),
    windowsSha256: windowsHash(windows),
  });
  // the planned windows go back to the caller so that running the job in this process tokenizes once
  return { job, resumed: !created, windows };
}

function checkParams(params: CaptureParams, nPositions: number): CaptureParams {
  const whole = (value: number, name: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new UserInputError(`${name} must be a whole number in ${min}-${max}, got ${value}`);
    }
  };
  whole(params.windowLength, 'window length', 1, nPositions);
  whole(params.minWindowLength, 'minimum window length', 1, params.windowLength);
  whole(params.windowsPerShard, 'windows per shard', 1);
  whole(params.shardsPerCheckpoint, 'shards per work item', 1);
  whole(params.hooksPerItem, 'hooks per work item (0: all)', 0);
  whole(params.recordSeed, 'record seed', 0, 2 ** 32 - 1);
  return params;
}

function windowsHash(windows: Window[]): string {
  const hash = createHash('sha256');
  for (const w of windows) hash.update(`${w.documentId}\0${w.start}\0${w.ids.join(',')}\n`);
  return hash.digest('hex');
}

async function planWindows(
  runner: Gpt2Runner,
  dataset: string,
  maxTokens: number,
  params: CaptureParams,
): Promise<Window[]> {
  const windows: Window[] = [];
  const source = cutWindows(readDataset(dataset), (text) => runner.tokenizer.encode(text), {
    length: params.windowLength,
    minLength: params.minWindowLength,
    maxTokens,
  });
  for await (const window of source) windows.push(window);
  return windows;
}

/** What a call to runCaptureJob left: the job finished, or its remaining work is in other workers' hands. */
export type CaptureRunOutcome = 'done' | 'elsewhere';

/**
 * Works on a capture job until nothing is left that this worker can take: it leases work items (window
 * ranges × hook groups) one at a time, and the worker that finds every item done builds the records
 * (under the job row's claim). Any number of workers, in this process or others, on this machine or
 * others sharing the data directory, can run it on one job at once; the records are the same bytes
 * however the items were shared out, and an item a worker was killed in is leased again (at once when
 * its process is gone from this host, else when its lease runs out). Returns 'elsewhere' when other
 * live workers hold the rest (call again later, as the service's poll and `loupe capture` do).
 */
export async function runCaptureJob(
  sql: Sql,
  runner: Gpt2Runner,
  jobId: string,
  options: {
    dataDir: string;
    worker: string;
    onProgress?: (p: CaptureProgress) => void;
    /** the windows prepareCaptureJob planned, when it ran in this process (checked against the job) */
    windows?: Window[];
  },
): Promise<CaptureRunOutcome> {
  const db = <T>(work: () => Promise<T>) => retryWhileUnavailable(work);
  let job = await db(() => getJob(sql, jobId));
  if (job.status === 'done') return 'done';
  if (job.status === 'cancelled') {
    throw new UserInputError(`capture job ${jobId} was cancelled${job.error ? `: ${job.error}` : ''}`);
  }
  if (job.modelSha256 !== runner.manifest.source.sha256) {
    throw new UserInputError(`capture job ${jobId} was made with a different model (${job.model})`);
  }
  if (!(await db(() => hasClaimableWork(sql, job)))) return 'elsewhere';
  const windows = options.windows ?? (await planWindows(runner, job.dataset, job.maxTokens, job.params));
  if (windows.length !== job.totalWindows || windowsHash(windows) !== job.windowsSha256) {
    const reason = `dataset "${job.dataset}" changed since capture job ${job.id} was planned; the job is retired, run the command again for a new one`;
    await retireJob(sql, job.id, reason);
    throw new UserInputError(reason);
  }
  await db(() => startJob(sql, job.id));
  await db(() => ensureItems(sql, job, windows));
  const dir = captureJobDir(options.dataDir, job.id);
  const report = async (phase: CaptureProgress['phase']) => {
    if (!options.onProgress) return;
    const now = await db(() => getJob(sql, job.id));
    options.onProgress({
      jobId: job.id,
      phase,
      windowsDone: now.windowsDone,
      totalWindows: job.totalWindows,
      tokensDone: now.tokensDone,
      totalTokens: job.totalTokens,
    });
  };

  for (;;) {
    const item = await db(() => claimItem(sql, job.id, options.worker));
    if (!item) break;
    const stopHeartbeat = keepItemAlive(sql, item);
    try {
      const shards = await runItem(runner, job, item, windows, dir);
      if (!(await db(() => completeItem(sql, item, shards)))) {
        // cancelled, failed by another worker, or our lease was taken over: that worker goes on
        const now = await db(() => getJob(sql, job.id));
        if (now.status !== 'running') throw new UserInputError(`capture job ${job.id} is ${now.status}`);
      }
    } catch (error) {
      if (error instanceof UserInputError) throw error;
      await db(() => releaseItem(sql, item, (error as Error).message)).catch(() => {});
      await db(() => failJob(sql, job.id, (error as Error).message)).catch(() => {});
      throw error;
    } finally {
      stopHeartbeat();
    }
    await report('capture');
  }
  if ((await db(() => openItems(sql, job.id))) > 0) return 'elsewhere';

  // every item is done: one worker builds the records, under the job row's claim and heartbeat
  const claimed =
    (await db(() => claimJob(sql, job.id, options.worker))) ??
    (await db(() => claimFromDeadProcess(sql, job.id, options.worker)));
  if (!claimed) {
    job = await db(() => getJob(sql, job.id));
    return job.status === 'done' ? 'done' : 'elsewhere';
  }
  job = claimed;
  const stopHeartbeat = keepAlive(sql, job.id, options.worker);
  try {
    await db(() => checkpoint(sql, job.id, options.worker, { ...progressAtEnd(job), phase: 'records' }));
    await report('records');
    await removePartialFiles(dir);
    await recordsPhase(sql, job, windows, {
      dir,
      worker: options.worker,
      width: runner.manifest.dims.dMlp,
      ranges: Math.ceil(job.totalWindows / windowsPerItem(job)),
      hooks: job.hooks.filter(isNeuronHook),
    });
    await db(() => finishJob(sql, job.id, options.worker, {}));
    await removeItemStates(dir);
  } catch (error) {
    await finishJob(sql, job.id, options.worker, { error: (error as Error).message }).catch(() => {});
    throw error;
  } finally {
    stopHeartbeat();
  }
  await report('done');
  return 'done';
}

function progressAtEnd(job: CaptureJobRow) {
  return { windowsDone: job.totalWindows, tokensDone: job.totalTokens };
}

/**
 * Half-written files (`*.tmp-<pid>`) of a killed worker. Removed only when every item is done and this
 * worker holds the job for its records phase, so no other worker is writing in the job's folder.
 */
async function removePartialFiles(dir: string): Promise<void> {
  const entries = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
  for (const entry of entries) {
    if (/\.tmp-\d+$/.test(entry)) await fs.rm(path.join(dir, entry), { force: true });
  }
}

/**
 * The records phase of a job whose holder ran on this host under a process id that no longer exists
 * (killed, crashed) can be taken over at once instead of after its heartbeat goes stale.
 */
async function claimFromDeadProcess(sql: Sql, jobId: string, worker: string): Promise<CaptureJobRow | null> {
  const holder = (await getJob(sql, jobId)).worker;
  if (!isDeadLocalWorker(holder)) return null;
  return claimJob(sql, jobId, worker, { deadWorker: holder! });
}
