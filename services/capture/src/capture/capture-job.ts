import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  FileWriterThread,
  isNeuronHook,
  requirePositionHook,
  SafetensorsReader,
  safetensorsViews,
  syncFiles,
  UserInputError,
  writeSafetensors,
} from '@loupe/common';
import type { Sql } from '@loupe/common/db';
import type { Gpt2Runner, WindowReduction } from '@loupe/model';
import {
  type AccumulatorSnapshot,
  buildRecords,
  captureJobDir,
  cutWindows,
  DEFAULT_DATASET,
  DEFAULT_RECORD_SETTINGS,
  NeuronRecordAccumulator,
  type RecordRowsSource,
  type RecordsBuildTask,
  RecordsThreads,
  readDataset,
  restoreAccumulator,
  shardFile,
  snapshotAccumulator,
  type Window,
} from '@loupe/records';
import {
  type CaptureJobRow,
  type CaptureParams,
  checkpoint,
  claimJob,
  createJob,
  findResumable,
  finishJob,
  getJob,
  keepAlive,
  retireJob,
  STALE_AFTER_SECONDS,
} from './job-store.js';
import { saveRecordRows } from './record-rows.js';

export const DEFAULT_CAPTURE_PARAMS: CaptureParams = {
  windowLength: 64,
  minWindowLength: 16,
  windowsPerShard: 64,
  shardsPerCheckpoint: 4,
  recordSeed: 0,
};
/** windows per forward pass: 16 × 64 = 1024 tokens keeps outputs of wide hooks to tens of MB */
const WINDOWS_PER_FORWARD = 16;
/** records threads: each holds one hook's record set (tens of MB at GPT-2 widths) */
const MAX_RECORDS_THREADS = 4;

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
  for (const hook of request.hooks) requirePositionHook(hook, runner.manifest.dims.nLayer, 'a capture job');
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
  whole(params.shardsPerCheckpoint, 'shards per checkpoint', 1);
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

/**
 * Runs (or resumes) a capture job to the end. Work is checkpointed every few shards: shard files and
 * record state are written first, then the job row's progress, so after a crash the row never points
 * past what is on disk; redone shards overwrite identical files and upsert identical rows.
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
): Promise<void> {
  const job =
    (await claimJob(sql, jobId, options.worker)) ?? (await claimFromDeadProcess(sql, jobId, options.worker));
  if (!job) {
    throw new UserInputError(
      `capture job ${jobId} is finished, or running in another live process (a dead one's claim expires after ${STALE_AFTER_SECONDS} s)`,
    );
  }
  if (job.modelSha256 !== runner.manifest.source.sha256) {
    throw new UserInputError(`capture job ${jobId} was made with a different model (${job.model})`);
  }
  const stopHeartbeat = keepAlive(sql, job.id, options.worker);
  try {
    const dir = captureJobDir(options.dataDir, job.id);
    await removePartialFiles(dir);
    const windows = options.windows ?? (await planWindows(runner, job.dataset, job.maxTokens, job.params));
    if (windows.length !== job.totalWindows || windowsHash(windows) !== job.windowsSha256) {
      const reason = `dataset "${job.dataset}" changed since capture job ${job.id} was planned; the job is retired, run the command again for a new one`;
      await retireJob(sql, job.id, reason);
      throw new UserInputError(reason);
    }
    const report = (phase: CaptureProgress['phase'], windowsDone: number, tokensDone: number) =>
      options.onProgress?.({
        jobId: job.id,
        phase,
        windowsDone,
        totalWindows: job.totalWindows,
        tokensDone,
        totalTokens: job.totalTokens,
      });
    const accumulators = await loadAccumulators(runner, job, dir).catch(
      async (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
        const reason = `capture job ${job.id}: its checkpoint files under ${dir} are missing (was LOUPE_DATA_DIR changed?); the job is retired, run the command again for a new one`;
        await retireJob(sql, job.id, reason);
        throw new UserInputError(reason);
      },
    );
    if (job.phase === 'capture') {
      await capturePhase(sql, runner, job, windows, accumulators, dir, options.worker, report);
    }
    await recordsPhase(sql, job, windows, accumulators, dir, options.worker);
    await finishJob(sql, job.id, options.worker, {});
    report('done', job.totalWindows, job.totalTokens);
  } catch (error) {
    await finishJob(sql, job.id, options.worker, { error: (error as Error).message }).catch(() => {});
    throw error;
  } finally {
    stopHeartbeat();
  }
}

async function capturePhase(
  sql: Sql,
  runner: Gpt2Runner,
  job: CaptureJobRow,
  windows: Window[],
  accumulators: Map<string, NeuronRecordAccumulator>,
  dir: string,
  worker: string,
  report: (phase: CaptureProgress['phase'], windowsDone: number, tokensDone: number) => void,
): Promise<void> {
  const { windowsPerShard, shardsPerCheckpoint } = job.params;
  let windowsDone = job.windowsDone;
  let tokensDone = job.tokensDone;
  let shardsSinceCheckpoint = 0;
  // Disk work runs behind the forward passes, in order: each shard's files are written and fsynced (on
  // the writer thread, which keeps going while a forward pass holds this thread), then their rows, and a
  // checkpoint (record-state snapshot, then the job row) follows the shards it covers, so the row never
  // points past what is durable. At most one shard's writes are in flight.
  const writer = FileWriterThread.start();
  let background: Promise<unknown> = Promise.resolve();
  const behind = (work: () => Promise<unknown>) => {
    background = background.then(work);
    background.catch(() => {}); // awaited before the next shard; this only keeps a failure from being reported as unhandled first
  };
  try {
    for (let first = windowsDone; first < windows.length; first += windowsPerShard) {
      const shardWindows = windows.slice(first, first + windowsPerShard);
      const shard = first / windowsPerShard;
      const tokens = shardWindows.reduce((n, w) => n + w.ids.length, 0);
      const { perHook, stats } = await runWindows(runner, shardWindows, job.hooks);
      await background;
      for (const [hook, accumulator] of accumulators) {
        const activations = perHook.get(hook)!;
        const reductions = stats.get(hook)!;
        for (const [i, w] of shardWindows.entries()) accumulator.observe(w, activations[i], reductions[i]);
      }
      // the forward outputs are read for the last time above: their buffers go to the writer thread
      const files = await Promise.all(
        job.hooks.map((hook) => writeShard(writer, dir, job, hook, shard, shardWindows, perHook.get(hook)!)),
      );
      behind(async () => {
        await Promise.all(files.map((f) => f.written));
        for (const [h, hook] of job.hooks.entries()) {
          await sql`
              INSERT INTO activation_shards (job_id, hook, shard, path, first_window, windows, tokens, width)
              VALUES (${job.id}, ${hook}, ${shard}, ${files[h].file}, ${first}, ${shardWindows.length}, ${tokens},
                      ${files[h].width})
              ON CONFLICT (job_id, hook, shard) DO UPDATE SET path = EXCLUDED.path, windows = EXCLUDED.windows, tokens = EXCLUDED.tokens`;
        }
      });
      windowsDone = first + shardWindows.length;
      tokensDone += tokens;
      shardsSinceCheckpoint++;
      const last = windowsDone === windows.length;
      if (shardsSinceCheckpoint >= shardsPerCheckpoint || last) {
        const snapshots = [...accumulators].map(([hook, accumulator]) => ({
          hook,
          snapshot: snapshotAccumulator(accumulator),
        }));
        const progress = {
          windowsDone,
          tokensDone,
          phase: last ? ('records' as const) : ('capture' as const),
        };
        behind(async () => {
          await saveSnapshots(snapshots, dir, progress.windowsDone);
          const owned = await checkpoint(sql, job.id, worker, progress);
          if (!owned) throw new Error(`capture job ${job.id} was taken over by another worker`);
          await pruneSnapshots(dir, progress.windowsDone);
        });
        shardsSinceCheckpoint = 0;
      }
      report('capture', windowsDone, tokensDone);
    }
    await background;
  } catch (error) {
    // nothing may still be writing when the caller marks the job failed
    await background.catch(() => {});
    throw error;
  } finally {
    await writer.close();
  }
}

/** Half-written files (`*.tmp-<pid>`) of a killed worker; the claim makes this process their only writer. */
async function removePartialFiles(dir: string): Promise<void> {
  const entries = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
  for (const entry of entries) {
    if (/\.tmp-\d+$/.test(entry)) await fs.rm(path.join(dir, entry), { force: true });
  }
}

/**
 * A job whose worker ran on this host under a process id that no longer exists (killed, crashed) can be
 * taken over at once instead of after its heartbeat goes stale.
 */
async function claimFromDeadProcess(sql: Sql, jobId: string, worker: string): Promise<CaptureJobRow | null> {
  const holder = (await getJob(sql, jobId)).worker;
  const [host, pid] = (holder ?? '').split(':');
  if (!holder || host !== os.hostname() || !/^\d+$/.test(pid ?? '') || processAlive(Number(pid))) return null;
  return claimJob(sql, jobId, worker, { deadWorker: holder });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs windows through the trunk graph: per hook, one [tokens, width] array per window, and per
 * neuron hook each window's statistics where the forward pass reduced them (undefined for a window
 * shorter than its batch's longest, or on a model converted before they existed: `observe` reduces
 * those itself).
 */
async function runWindows(
  runner: Gpt2Runner,
  windows: Window[],
  hooks: string[],
): Promise<{
  perHook: Map<string, Float32Array[]>;
  stats: Map<string, (WindowReduction | undefined)[]>;
}> {
  const perHook = new Map<string, Float32Array[]>(hooks.map((h) => [h, []]));
  const stats = new Map<string, (WindowReduction | undefined)[]>(
    hooks.filter(isNeuronHook).map((h) => [h, []]),
  );
  for (let i = 0; i < windows.length; i += WINDOWS_PER_FORWARD) {
    const batch = windows.slice(i, i + WINDOWS_PER_FORWARD);
    const results = await runner.forward(
      batch.map((w) => ({ ids: w.ids, hooks, logits: false, windowStats: true })),
    );
    for (const result of results) {
      for (const hook of hooks) perHook.get(hook)!.push(result.hooks.get(hook)!);
      for (const [hook, list] of stats) list.push(result.windowStats.get(hook));
    }
  }
  return { perHook, stats };
}

/**
 * Hands one hook's shard to the writer thread, with the buffers behind its windows (the forward
 * outputs, read by nothing else afterwards); `written` settles once the file is durable.
 */
async function writeShard(
  writer: FileWriterThread,
  dir: string,
  job: CaptureJobRow,
  hook: string,
  shard: number,
  windows: Window[],
  activations: Float32Array[],
): Promise<{ file: string; width: number; written: Promise<void> }> {
  const file = shardFile(dir, hook, shard);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tokens = windows.reduce((n, w) => n + w.ids.length, 0);
  const width = activations[0].length / windows[0].ids.length;
  const offsets = new Int32Array(windows.length + 1);
  for (const [i, w] of windows.entries()) offsets[i + 1] = offsets[i] + w.ids.length;
  const views = await safetensorsViews(
    [
      { name: 'activations', dtype: 'F32', shape: [tokens, width], data: activations },
      {
        name: 'token_ids',
        dtype: 'I32',
        shape: [tokens],
        data: Int32Array.from(windows.flatMap((w) => w.ids)),
      },
      {
        name: 'window_index',
        dtype: 'I32',
        shape: [windows.length],
        data: Int32Array.from(windows, (w) => w.index),
      },
      { name: 'window_offsets', dtype: 'I32', shape: [windows.length + 1], data: offsets },
    ],
    { hook, model: job.model, model_sha256: job.modelSha256, job: job.id, shard: String(shard) },
  );
  const transfer = [...new Set(activations.map((a) => a.buffer as ArrayBuffer))];
  const written = writer.write(file, views, transfer);
  written.catch(() => {}); // awaited behind the forward passes; a job failing first must not leave it unhandled
  return { file, width, written };
}

function snapshotFile(dir: string, hook: string, windowsDone: number): string {
  return path.join(dir, 'records-state', `${hook}.${windowsDone}.safetensors`);
}

async function saveSnapshots(
  snapshots: { hook: string; snapshot: AccumulatorSnapshot }[],
  dir: string,
  windowsDone: number,
): Promise<void> {
  await Promise.all(
    snapshots.map(async ({ hook, snapshot }) => {
      const file = snapshotFile(dir, hook, windowsDone);
      await fs.mkdir(path.dirname(file), { recursive: true });
      await writeSafetensors(file, snapshot.tensors, snapshot.metadata);
    }),
  );
}

/** Older snapshots are deleted only after the job row points at the newer one. */
async function pruneSnapshots(dir: string, windowsDone: number): Promise<void> {
  const stateDir = path.join(dir, 'records-state');
  for (const file of await fs.readdir(stateDir).catch(() => [] as string[])) {
    const done = Number(file.split('.').at(-2));
    if (done !== windowsDone) await fs.rm(path.join(stateDir, file), { force: true });
  }
}

async function loadAccumulators(
  runner: Gpt2Runner,
  job: CaptureJobRow,
  dir: string,
): Promise<Map<string, NeuronRecordAccumulator>> {
  const accumulators = new Map<string, NeuronRecordAccumulator>();
  for (const hook of job.hooks.filter(isNeuronHook)) {
    const width = runner.manifest.dims.dMlp;
    if (job.windowsDone === 0) {
      accumulators.set(
        hook,
        new NeuronRecordAccumulator(width, job.params.windowLength, {
          ...DEFAULT_RECORD_SETTINGS,
          seed: job.params.recordSeed,
        }),
      );
      continue;
    }
    const reader = await SafetensorsReader.open(snapshotFile(dir, hook, job.windowsDone));
    try {
      const tensors = new Map<string, Float32Array | Float64Array | Int32Array>();
      for (const info of reader.tensors.values()) {
        tensors.set(
          info.name,
          (await reader.readArray(info.name)) as Float32Array | Float64Array | Int32Array,
        );
      }
      accumulators.set(
        hook,
        restoreAccumulator(width, (name) => tensors.get(name)!, reader.metadata),
      );
    } finally {
      await reader.close();
    }
  }
  return accumulators;
}

/**
 * Builds each hook's records from the random sample (read back from the shards) and writes its record
 * file, on worker threads, several hooks at once; the rows are upserted here as each hook's come back,
 * in hook order, while the threads build the next.
 */
async function recordsPhase(
  sql: Sql,
  job: CaptureJobRow,
  windows: Window[],
  accumulators: Map<string, NeuronRecordAccumulator>,
  dir: string,
  worker: string,
): Promise<void> {
  const hooks = [...accumulators.keys()];
  const threads = RecordsThreads.start(
    Math.min(hooks.length, MAX_RECORDS_THREADS, os.availableParallelism()),
  );
  const task = (hook: string): RecordsBuildTask => ({
    dir,
    hook,
    windowsPerShard: job.params.windowsPerShard,
    file: path.join(dir, 'records', `${hook}.safetensors`),
    metadata: { hook, model: job.model, job: job.id },
  });
  const build = (hook: string) =>
    threads
      ? threads.build(accumulators.get(hook)!, task(hook))
      : buildRecords(accumulators.get(hook)!, task(hook));
  // as many builds in flight as there are threads (one in process: it then runs beside the rows)
  const ahead = threads?.size ?? 1;
  const builds: Promise<RecordRowsSource>[] = [];
  const startNext = () => {
    if (builds.length >= hooks.length) return;
    const next = build(hooks[builds.length]);
    next.catch(() => {}); // awaited in order below; this only keeps an early failure from being reported as unhandled
    builds.push(next);
  };
  try {
    for (let i = 0; i < ahead; i++) startNext();
    for (const [i, hook] of hooks.entries()) {
      const set = await builds[i];
      startNext();
      await saveRecordRows(sql, job, hook, set, windows, task(hook).file);
      const progress = {
        windowsDone: job.totalWindows,
        tokensDone: job.totalTokens,
        phase: 'records' as const,
      };
      if (!(await checkpoint(sql, job.id, worker, progress))) {
        throw new Error(`capture job ${job.id} was taken over by another worker`);
      }
    }
  } finally {
    await threads?.close();
  }
  // A crash before the job is finished redoes this phase, so the files need only be durable by then:
  // fsynced together at the end rather than one at a time on the critical path.
  await syncFiles(hooks.map((hook) => task(hook).file));
}
