import fs from 'node:fs/promises';
import path from 'node:path';
import { FileWriterThread, isNeuronHook, safetensorsViews, writeSafetensors } from '@loupe/common';
import type { Gpt2Runner, WindowReduction } from '@loupe/model';
import {
  DEFAULT_RECORD_SETTINGS,
  NeuronRecordAccumulator,
  shardFile,
  snapshotAccumulator,
  type Window,
} from '@loupe/records';
import type { CaptureJobRow } from './job-store.js';
import type { ShardRow, WorkItem } from './work-items.js';

/** windows per forward pass: 16 × 64 = 1024 tokens keeps outputs of wide hooks to tens of MB */
const WINDOWS_PER_FORWARD = 16;

/** Where an item leaves one hook's record state, merged with the other items' by the records phase. */
export function itemStateFile(dir: string, hook: string, rangeIndex: number): string {
  return path.join(dir, 'items', `${hook}.${String(rangeIndex).padStart(6, '0')}.safetensors`);
}

/** A fresh record state for one neuron hook of the job (every item starts from one). */
export function newAccumulator(runner: Gpt2Runner, job: CaptureJobRow): NeuronRecordAccumulator {
  return new NeuronRecordAccumulator(runner.manifest.dims.dMlp, job.params.windowLength, {
    ...DEFAULT_RECORD_SETTINGS,
    seed: job.params.recordSeed,
  });
}

/**
 * Runs one work item: its windows through the trunk graph shard by shard, each hook's shard file
 * written and fsynced on the writer thread behind the next forward pass, and each neuron hook's record
 * state of these windows alone saved at the end. Returns the shard rows once every file is durable;
 * what the item writes depends only on the job and the item, so a re-run after a crash, by this or
 * any other worker, writes the same bytes.
 */
export async function runItem(
  runner: Gpt2Runner,
  job: CaptureJobRow,
  item: WorkItem,
  windows: Window[],
  dir: string,
): Promise<ShardRow[]> {
  const { windowsPerShard } = job.params;
  const accumulators = new Map(item.hooks.filter(isNeuronHook).map((h) => [h, newAccumulator(runner, job)]));
  const writer = FileWriterThread.start();
  const rows: ShardRow[] = [];
  const writes: Promise<void>[] = [];
  try {
    const last = item.firstWindow + item.windows;
    for (let first = item.firstWindow; first < last; first += windowsPerShard) {
      const shardWindows = windows.slice(first, Math.min(first + windowsPerShard, last));
      const shard = first / windowsPerShard;
      const tokens = shardWindows.reduce((n, w) => n + w.ids.length, 0);
      const { perHook, stats } = await runWindows(runner, shardWindows, item.hooks);
      for (const [hook, accumulator] of accumulators) {
        const activations = perHook.get(hook)!;
        const reductions = stats.get(hook)!;
        for (const [i, w] of shardWindows.entries()) accumulator.observe(w, activations[i], reductions[i]);
      }
      // the forward outputs are read for the last time above: their buffers go to the writer thread
      for (const hook of item.hooks) {
        const file = await writeShard(writer, dir, job, hook, shard, shardWindows, perHook.get(hook)!);
        writes.push(file.written);
        rows.push({
          hook,
          shard,
          path: file.file,
          firstWindow: first,
          windows: shardWindows.length,
          tokens,
          width: file.width,
        });
      }
      // at most one shard's writes in flight behind the next forward pass
      await Promise.all(writes.splice(0, writes.length - item.hooks.length));
    }
    await Promise.all(writes);
  } catch (error) {
    // nothing may still be writing when the caller gives the item back
    await Promise.allSettled(writes);
    throw error;
  } finally {
    await writer.close();
  }
  for (const [hook, accumulator] of accumulators) {
    const file = itemStateFile(dir, hook, item.rangeIndex);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const { tensors, metadata } = snapshotAccumulator(accumulator);
    await writeSafetensors(file, tensors, metadata);
  }
  return rows;
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
  written.catch(() => {}); // awaited by runItem; an item failing first must not leave it unhandled
  return { file, width, written };
}
