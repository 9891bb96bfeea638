import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SafetensorsReader, syncFiles, writeSafetensors } from '@loupe/common';
import type { Sql } from '@loupe/common/db';
import {
  buildRecords,
  type NeuronRecordAccumulator,
  type RecordRowsSource,
  type RecordsBuildTask,
  RecordsThreads,
  restoreAccumulator,
  snapshotAccumulator,
  type Window,
} from '@loupe/records';
import { itemStateFile } from './capture-item.js';
import { type CaptureJobRow, checkpoint } from './job-store.js';
import { saveRecordRows } from './record-rows.js';

/** records threads: each holds one hook's record set (tens of MB at GPT-2 widths) */
const MAX_RECORDS_THREADS = 4;

/** The record state a hook's records are built from: every item's, merged in window order. */
export function mergedStateFile(dir: string, hook: string): string {
  return path.join(dir, 'records-state', `${hook}.safetensors`);
}

export async function readAccumulator(file: string, width: number): Promise<NeuronRecordAccumulator> {
  const reader = await SafetensorsReader.open(file);
  try {
    const tensors = new Map<string, Float32Array | Float64Array | Int32Array>();
    for (const info of reader.tensors.values()) {
      tensors.set(info.name, (await reader.readArray(info.name)) as Float32Array | Float64Array | Int32Array);
    }
    return restoreAccumulator(width, (name) => tensors.get(name)!, reader.metadata);
  } finally {
    await reader.close();
  }
}

/**
 * Merges one hook's item states in window order (the same order however many workers made them, so
 * the float64 sums come out the same) and keeps the result beside the records.
 */
async function mergeItemStates(dir: string, hook: string, ranges: number, width: number) {
  let merged: NeuronRecordAccumulator | null = null;
  for (let range = 0; range < ranges; range++) {
    const state = await readAccumulator(itemStateFile(dir, hook, range), width);
    if (merged) merged.merge(state);
    else merged = state;
  }
  const file = mergedStateFile(dir, hook);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const { tensors, metadata } = snapshotAccumulator(merged!);
  await writeSafetensors(file, tensors, metadata);
  return merged!;
}

/**
 * Builds each neuron hook's records from the merged item states (the random sample read back from the
 * shards) and writes its record file, on worker threads, several hooks at once; the rows are upserted
 * here as each hook's come back, in hook order, while the threads build the next. Runs under the job
 * row's claim: `checkpoint` refuses once another worker took the job over.
 */
export async function recordsPhase(
  sql: Sql,
  job: CaptureJobRow,
  windows: Window[],
  options: { dir: string; worker: string; width: number; ranges: number; hooks: string[] },
): Promise<void> {
  const { dir, worker, hooks } = options;
  if (hooks.length === 0) return;
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
  const build = async (hook: string) => {
    const accumulator = await mergeItemStates(dir, hook, options.ranges, options.width);
    return threads ? threads.build(accumulator, task(hook)) : buildRecords(accumulator, task(hook));
  };
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
    await Promise.allSettled(builds);
    await threads?.close();
  }
  // A crash before the job is finished redoes this phase, so the files need only be durable by then:
  // fsynced together at the end rather than one at a time on the critical path.
  await syncFiles(hooks.map((hook) => task(hook).file));
}

/** Item states are dropped once the job is done (the merged state stays beside the records). */
export async function removeItemStates(dir: string): Promise<void> {
  await fs.rm(path.join(dir, 'items'), { recursive: true, force: true });
}
