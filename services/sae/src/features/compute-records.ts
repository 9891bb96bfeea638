import fs from 'node:fs/promises';
import path from 'node:path';
import { type Logger, UserInputError } from '@loupe/common';
import type { Sql } from '@loupe/common/db';
import {
  computeLogitTokens,
  readUnembedding,
  type SessionSettings,
  type WindowReduction,
} from '@loupe/model';
import {
  DEFAULT_RECORD_SETTINGS,
  NeuronRecordAccumulator,
  type RecordSettings,
  ShardFolder,
  type ShardWindow,
  WindowReducer,
  writeRecordFile,
} from '@loupe/records';
import { readSaeLens } from '../format/saelens.js';
import { SaeEncoder } from '../infer/sae-encoder.js';
import { recordsFile } from '../store/sae-library.js';
import { findSae, saveFeatureRecords, saveLogitTokens } from '../store/sae-store.js';
import { nonZeroHistogram } from './nonzero-histogram.js';

export type FeaturePhase = 'encode' | 'sample' | 'write' | 'logits';

export interface ComputeFeatureRecordsOptions extends SessionSettings {
  /** a converted model folder for logit tokens; none = skip them */
  modelDir?: string;
  /** overrides of capture's record settings (top 20, 20 random, 256-window sample, 32 bins) */
  settings?: Partial<RecordSettings>;
  /** token rows per encoder call: bounds the dense [rows, d_sae] latents held at once; 1024 */
  rowsPerBatch?: number;
  onProgress?: (phase: FeaturePhase, done: number, total: number) => void;
  log?: Logger;
}

export interface FeatureRecordsSummary {
  saeId: string;
  file: string;
  source: string;
  tokens: number;
  windows: number;
  features: number;
  /** features that never fired on the dataset */
  dead: number;
  logitTokens: boolean;
}

/**
 * Feature statistics and records of a library SAE over a capture job's activation shards for its hook,
 * with capture's record algorithm (NeuronRecordAccumulator: the features play the neurons). Shards are
 * streamed one at a time and encoded in bounded batches; the sample windows are read back and encoded
 * again for the random and quantile records. Writes `<sae dir>/records.safetensors` and the rows.
 */
export async function computeFeatureRecords(
  sql: Sql,
  dataDir: string,
  saeId: string,
  activationsDir: string,
  options: ComputeFeatureRecordsOptions,
): Promise<FeatureRecordsSummary> {
  const row = await findSae(sql, saeId);
  const sae = await readSaeLens(row.weightsPath);
  const folder = await ShardFolder.open(activationsDir, row.hook);
  if (folder.width !== row.dIn) {
    throw new UserInputError(
      `the shards in ${folder.dir} are ${folder.width} wide; SAE "${saeId}" reads ${row.hook} vectors of width ${row.dIn}`,
    );
  }
  const settings: RecordSettings = { ...DEFAULT_RECORD_SETTINGS, ...options.settings };
  const session = {
    device: options.device,
    intraOpThreads: options.intraOpThreads,
    owner: options.owner,
    log: options.log,
  };
  const encoder = await SaeEncoder.open(sae, session);
  const reducer = await WindowReducer.create(session);
  const accumulator = new NeuronRecordAccumulator(row.dSae, folder.windowLength, settings);
  const rowsPerBatch = options.rowsPerBatch ?? 1024;
  const total = folder.windowCount;
  try {
    let done = 0;
    for await (const shard of folder.windows()) {
      for (const batch of batches(shard, rowsPerBatch)) {
        const encoded = await encodeWindows(encoder, batch);
        const reductions = await reduceFullWindows(reducer, batch, encoded, folder.windowLength, row.dSae);
        for (const [i, w] of batch.entries()) {
          accumulator.observe(
            { index: w.index, documentId: '', start: 0, ids: [...w.ids] },
            encoded[i],
            reductions[i],
          );
        }
        done += batch.length;
        options.onProgress?.('encode', done, total);
      }
    }
    // the sample's latents go to the records one batch at a time: all at once they are gigabytes
    const finisher = accumulator.beginFinish();
    const plan = finisher.pending();
    const read = await folder.read(plan);
    const windows = [...read.values()];
    const histogram = new Int32Array(row.dSae * settings.histogramBins);
    let sampled = 0;
    for (const batch of batches(windows, rowsPerBatch)) {
      const encoded = await encodeWindows(encoder, batch);
      for (const [i, w] of batch.entries()) finisher.add(w.index, encoded[i]);
      const counts = nonZeroHistogram(encoded, row.dSae, accumulator.stats.max, settings.histogramBins);
      for (let i = 0; i < counts.length; i++) histogram[i] += counts[i];
      sampled += batch.length;
      options.onProgress?.('sample', sampled, plan.length);
    }
    const set = finisher.result();

    options.onProgress?.('write', 0, 1);
    const file = recordsFile(dataDir, saeId);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const source = path.resolve(activationsDir);
    await writeRecordFile(file, set, { sae: saeId, hook: row.hook, model: row.model, source });
    const referenced = new Set<number>(
      [...set.topWindows, ...set.randomWindows, ...set.quantileWindows].filter((w) => w >= 0),
    );
    const ids = new Map([...(await folder.read(referenced, 'ids'))].map(([w, s]) => [w, s.ids]));
    await saveFeatureRecords(
      sql,
      { saeId, path: file, source, tokens: set.tokens, windows: total, windowLength: folder.windowLength },
      set,
      histogram,
      ids,
    );
    options.onProgress?.('write', 1, 1);

    let logitTokens = false;
    if (options.modelDir) {
      await computeFeatureLogitTokens(sql, saeId, options.modelDir, {
        ...session,
        onProgress: (d, t) => options.onProgress?.('logits', d, t),
      });
      logitTokens = true;
    }
    return {
      saeId,
      file,
      source,
      tokens: set.tokens,
      windows: total,
      features: row.dSae,
      dead: set.fractionNonZero.filter((f) => f === 0).length,
      logitTokens,
    };
  } finally {
    await encoder.close();
    await reducer.release();
  }
}

/** Logit tokens of every feature of a library SAE through a converted model's unembedding. */
export async function computeFeatureLogitTokens(
  sql: Sql,
  saeId: string,
  modelDir: string,
  settings: SessionSettings & { onProgress?: (done: number, total: number) => void },
): Promise<void> {
  const row = await findSae(sql, saeId);
  const sae = await readSaeLens(row.weightsPath);
  const unembedding = await readUnembedding(modelDir);
  const logits = await computeLogitTokens(sae.weights.W_dec, row.dIn, unembedding, {
    ...settings,
    subject: 'this SAE',
  });
  await saveLogitTokens(sql, saeId, logits);
}

/** Consecutive runs of windows holding at most `rows` tokens (at least one window each). */
function batches(windows: ShardWindow[], rows: number): ShardWindow[][] {
  const out: ShardWindow[][] = [];
  let current: ShardWindow[] = [];
  let tokens = 0;
  for (const w of windows) {
    if (current.length > 0 && tokens + w.ids.length > rows) {
      out.push(current);
      current = [];
      tokens = 0;
    }
    current.push(w);
    tokens += w.ids.length;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Latents of each window, [tokens, d_sae], from one encoder call over the batch. */
async function encodeWindows(encoder: SaeEncoder, windows: ShardWindow[]): Promise<Float32Array[]> {
  const rows = windows.reduce((n, w) => n + w.ids.length, 0);
  const x = new Float32Array(rows * encoder.dIn);
  let at = 0;
  for (const w of windows) {
    x.set(w.activations, at * encoder.dIn);
    at += w.ids.length;
  }
  const acts = await encoder.encode(x, rows);
  const out: Float32Array[] = [];
  at = 0;
  for (const w of windows) {
    out.push(acts.subarray(at * encoder.dSae, (at + w.ids.length) * encoder.dSae));
    at += w.ids.length;
  }
  return out;
}

/**
 * Capture's ONNX Runtime reduction (max, min, sum, non-zero count, transposed columns) of the
 * full-length windows; shorter ones (document tails) fall back to the accumulator's own reduction.
 */
async function reduceFullWindows(
  reducer: WindowReducer,
  windows: ShardWindow[],
  encoded: Float32Array[],
  length: number,
  width: number,
): Promise<(WindowReduction | undefined)[]> {
  const full = windows.flatMap((w, i) => (w.ids.length === length ? [i] : []));
  const out: (WindowReduction | undefined)[] = new Array(windows.length);
  if (full.length === 0) return out;
  const batch = new Float32Array(full.length * length * width);
  for (const [k, i] of full.entries()) batch.set(encoded[i], k * length * width);
  const reduced = await reducer.reduce(batch, full.length, length, width);
  for (const [k, i] of full.entries()) out[i] = reduced[k];
  return out;
}
