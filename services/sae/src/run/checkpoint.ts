import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { SafetensorsReader, type TensorToWrite, UserInputError, writeSafetensors } from '@loupe/common';
import type { TrainerState } from '../train/trainer-state.js';
import type { LatentActivityState } from './latent-activity.js';

/**
 * Everything a bit-identical continuation needs. The data stream is not saved: it is re-seeded and fast-
 * forwarded by `step` batches (every step consumes exactly one), which reproduces the shuffle exactly.
 */
export interface TrainingCheckpoint {
  /** hash of the settings and data that determine the run; a checkpoint only resumes its own run */
  settingsHash: string;
  step: number;
  activationScale: number;
  trainer: TrainerState;
  activity: LatentActivityState;
  /** the progress reported after `step`, so a resumed run's first report continues from it */
  progress: Record<string, number>;
}

const FORMAT = 'loupe-sae-training-checkpoint/1';
const PREFIX = 'step-';
const SUFFIX = '.safetensors';
/** newest first; the one before the newest survives in case the newest turns out unreadable */
const KEEP = 2;

function fileName(step: number): string {
  return `${PREFIX}${String(step).padStart(10, '0')}${SUFFIX}`;
}

function stepOf(name: string): number | null {
  if (!name.startsWith(PREFIX) || !name.endsWith(SUFFIX)) return null;
  const n = Number(name.slice(PREFIX.length, -SUFFIX.length));
  return Number.isSafeInteger(n) ? n : null;
}

/** A stable hash of plain JSON values (object keys sorted), for settings identity. */
export function settingsHash(value: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
      );
    return v;
  };
  return createHash('sha256')
    .update(JSON.stringify(canonical(value)))
    .digest('hex');
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * Writes a checkpoint durably: safetensors' tmp + fsync + rename, then an fsync of the folder so the
 * rename itself survives a power cut; then removes all but the newest two. A sha256 of the tensor bytes
 * in the metadata lets a reader reject a file damaged after the fact.
 */
export async function writeCheckpoint(dir: string, checkpoint: TrainingCheckpoint): Promise<string> {
  await mkdir(dir, { recursive: true });
  const tensors: TensorToWrite[] = [];
  for (const [name, data] of Object.entries(checkpoint.trainer.tensors).sort(([a], [b]) =>
    a.localeCompare(b),
  ))
    tensors.push({ name: `trainer/${name}`, dtype: 'F32', shape: [data.length], data });
  const a = checkpoint.activity;
  for (const [name, data] of [
    ['lastFired', a.lastFired],
    ['blockCounts', a.blockCounts],
    ['windowCounts', a.windowCounts],
  ] as const)
    tensors.push({ name: `activity/${name}`, dtype: 'F64', shape: [data.length], data });
  const hash = createHash('sha256');
  for (const t of tensors) hash.update(bytesOf(t.data as ArrayBufferView));
  const metadata: Record<string, string> = {
    format: FORMAT,
    settings_hash: checkpoint.settingsHash,
    step: String(checkpoint.step),
    // JSON numbers round-trip doubles exactly
    activation_scale: JSON.stringify(checkpoint.activationScale),
    trainer_steps: String(checkpoint.trainer.steps),
    trainer_scalars: JSON.stringify(checkpoint.trainer.scalars),
    activity: JSON.stringify({ seen: a.seen, blockTokens: a.blockTokens, windowTokens: a.windowTokens }),
    progress: JSON.stringify(checkpoint.progress),
    content_sha256: hash.digest('hex'),
  };
  const file = path.join(dir, fileName(checkpoint.step));
  await writeSafetensors(file, tensors, metadata);
  await syncDirectory(dir);
  const older = (await checkpointSteps(dir)).slice(KEEP);
  for (const step of older) await rm(path.join(dir, fileName(step)), { force: true });
  return file;
}

async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Steps of the checkpoints in `dir`, newest first (leftover temporary files are not listed). */
async function checkpointSteps(dir: string): Promise<number[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .map(stepOf)
    .filter((s): s is number => s !== null)
    .sort((x, y) => y - x);
}

/**
 * The newest readable checkpoint in `dir`, or null if there is none. An unreadable file (torn, damaged)
 * is skipped for the one before it; a readable one written by a run with other settings or data is
 * refused, since silently starting over would throw away the work it holds.
 */
export async function latestCheckpoint(
  dir: string,
  expectedHash: string,
): Promise<TrainingCheckpoint | null> {
  for (const step of await checkpointSteps(dir)) {
    const file = path.join(dir, fileName(step));
    let checkpoint: TrainingCheckpoint;
    try {
      checkpoint = await readCheckpoint(file);
    } catch (err) {
      process.emitWarning(`skipping unreadable checkpoint ${file}: ${(err as Error).message}`);
      continue;
    }
    if (checkpoint.settingsHash !== expectedHash)
      throw new UserInputError(
        `${dir} holds a checkpoint (step ${checkpoint.step}) from a run with different settings or data; ` +
          'rerun with the same flags and activations to resume, or pass --force to start over',
      );
    return checkpoint;
  }
  return null;
}

async function readCheckpoint(file: string): Promise<TrainingCheckpoint> {
  const reader = await SafetensorsReader.open(file);
  try {
    const meta = reader.metadata;
    if (meta.format !== FORMAT) throw new Error(`format ${meta.format ?? '(none)'}, expected ${FORMAT}`);
    const hash = createHash('sha256');
    const tensors: Record<string, Float32Array> = {};
    const activity: Record<string, Float64Array> = {};
    for (const name of reader.tensors.keys()) {
      const data = await reader.readArray(name);
      hash.update(bytesOf(data));
      if (name.startsWith('trainer/')) tensors[name.slice('trainer/'.length)] = data as Float32Array;
      else if (name.startsWith('activity/')) activity[name.slice('activity/'.length)] = data as Float64Array;
    }
    if (hash.digest('hex') !== meta.content_sha256) throw new Error('tensor bytes do not match their sha256');
    const counters = JSON.parse(meta.activity) as { seen: number; blockTokens: number; windowTokens: number };
    return {
      settingsHash: meta.settings_hash,
      step: Number(meta.step),
      activationScale: JSON.parse(meta.activation_scale) as number,
      trainer: {
        steps: Number(meta.trainer_steps),
        tensors,
        scalars: JSON.parse(meta.trainer_scalars) as Record<string, number>,
      },
      activity: {
        ...counters,
        lastFired: activity.lastFired,
        blockCounts: activity.blockCounts,
        windowCounts: activity.windowCounts,
      },
      progress: JSON.parse(meta.progress) as Record<string, number>,
    };
  } finally {
    await reader.close();
  }
}
