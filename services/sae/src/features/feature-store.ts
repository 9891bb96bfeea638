import path from 'node:path';
import { UserInputError } from '@loupe/common';
import type { Sql } from '@loupe/common/db';
import type { FeatureRecordsResponse__Output, FeatureStatsResponse__Output } from '@loupe/common/grpc';
import { type RecordSet, readNeuronRecord, type WindowActivations } from '@loupe/records';
import { saeDir } from '../store/sae-library.js';
import type { LogitTokens } from './logit-tokens.js';

/** A logit token without its string: the service adds token strings with the model's tokenizer. */
export interface LogitTokenId {
  id: number;
  value: number;
}

export type FeatureStats = Omit<FeatureStatsResponse__Output, 'positiveLogits' | 'negativeLogits'> & {
  /** empty when logit tokens were not computed (no model folder, or d_in ≠ d_model) */
  positiveLogits: LogitTokenId[];
  negativeLogits: LogitTokenId[];
};

export interface FeatureRecordWindow {
  window: number;
  ids: number[];
  values: number[];
}

export type FeatureRecords = Omit<FeatureRecordsResponse__Output, 'top' | 'random' | 'quantiles'> & {
  top: FeatureRecordWindow[];
  random: FeatureRecordWindow[];
  quantiles: { from: number; to: number; windows: FeatureRecordWindow[] }[];
};

export interface FeatureRecordsRow {
  saeId: string;
  path: string;
  source: string;
  tokens: number;
  windows: number;
  windowLength: number;
}

const BATCH = 500;
export const RECORDS_FILE = 'records.safetensors';

/** An SAE's records file, beside its weights in the library. */
export function recordsFile(dataDir: string, saeId: string): string {
  return path.join(saeDir(dataDir, saeId), RECORDS_FILE);
}

/**
 * Replaces an SAE's records bookkeeping, per-feature statistics and record window token ids in one
 * transaction, so a reader never sees half of a recomputation.
 */
export async function saveFeatureRecords(
  sql: Sql,
  row: FeatureRecordsRow,
  set: RecordSet,
  histogram: Int32Array,
  windowIds: Map<number, ArrayLike<number>>,
): Promise<void> {
  const bins = histogram.length / set.width;
  await sql.begin(async (tx) => {
    await tx`DELETE FROM feature_records WHERE sae_id = ${row.saeId}`;
    await tx`
      INSERT INTO feature_records (sae_id, path, source, tokens, windows, window_length)
      VALUES (${row.saeId}, ${row.path}, ${row.source}, ${row.tokens}, ${row.windows}, ${row.windowLength})`;
    for (let first = 0; first < set.width; first += BATCH) {
      const rows = [];
      for (let f = first; f < Math.min(set.width, first + BATCH); f++) {
        rows.push({
          sae_id: row.saeId,
          feature: f,
          frequency: set.fractionNonZero[f],
          max_activation: set.max[f],
          mean_activation: set.mean[f],
          histogram: Array.from(histogram.subarray(f * bins, (f + 1) * bins)),
        });
      }
      await tx`INSERT INTO feature_stats ${tx(rows)}`;
    }
    const windows = [...windowIds].map(([index, ids]) => ({
      sae_id: row.saeId,
      window_index: index,
      token_ids: Array.from(ids),
    }));
    for (let i = 0; i < windows.length; i += BATCH) {
      await tx`INSERT INTO feature_record_windows ${tx(windows.slice(i, i + BATCH))}`;
    }
  });
}

export async function saveLogitTokens(sql: Sql, saeId: string, logits: LogitTokens): Promise<void> {
  const { count } = logits;
  const features = logits.positiveIds.length / count;
  const slice = <T extends Int32Array | Float32Array>(a: T, f: number) =>
    Array.from(a.subarray(f * count, (f + 1) * count));
  await sql.begin(async (tx) => {
    await tx`DELETE FROM feature_logit_tokens WHERE sae_id = ${saeId}`;
    for (let first = 0; first < features; first += BATCH) {
      const rows = [];
      for (let f = first; f < Math.min(features, first + BATCH); f++) {
        rows.push({
          sae_id: saeId,
          feature: f,
          positive_ids: slice(logits.positiveIds, f),
          positive_values: slice(logits.positiveValues, f),
          negative_ids: slice(logits.negativeIds, f),
          negative_values: slice(logits.negativeValues, f),
        });
      }
      await tx`INSERT INTO feature_logit_tokens ${tx(rows)}`;
    }
  });
}

/** The SAE's row, or NOT_FOUND naming a few SAEs that do exist. */
export async function findSae(
  sql: Sql,
  saeId: string,
): Promise<{ id: string; hook: string; model: string; dIn: number; dSae: number; weightsPath: string }> {
  const [row] = await sql`SELECT id, hook, model, d_in, d_sae, weights_path FROM saes WHERE id = ${saeId}`;
  if (!row) {
    const known = await sql`SELECT id FROM saes ORDER BY id LIMIT 11`;
    const list = known.slice(0, 10).map((r) => r.id as string);
    throw new UserInputError(
      `unknown SAE "${saeId}"; ` +
        (list.length
          ? `the library has ${list.join(', ')}${known.length > 10 ? ', …' : ''}`
          : 'the library is empty (import one with `loupe sae import`)'),
      'NOT_FOUND',
    );
  }
  return {
    id: row.id,
    hook: row.hook,
    model: row.model,
    dIn: row.d_in,
    dSae: row.d_sae,
    weightsPath: row.weights_path,
  };
}

async function recordsOf(sql: Sql, saeId: string, feature: number): Promise<FeatureRecordsRow> {
  const sae = await findSae(sql, saeId);
  if (!Number.isInteger(feature) || feature < 0 || feature >= sae.dSae) {
    throw new UserInputError(
      `feature ${feature} is out of range: SAE "${saeId}" has features 0-${sae.dSae - 1}`,
      'NOT_FOUND',
    );
  }
  const [row] = await sql`SELECT * FROM feature_records WHERE sae_id = ${saeId}`;
  if (!row) {
    throw new UserInputError(
      `SAE "${saeId}" has no feature records yet; compute them with \`loupe sae features ${saeId} --activations <capture-job-dir>\``,
      'NOT_FOUND',
    );
  }
  return {
    saeId,
    path: row.path,
    source: row.source,
    tokens: Number(row.tokens),
    windows: row.windows,
    windowLength: row.window_length,
  };
}

/** Statistics and logit tokens of one feature. */
export async function featureStats(sql: Sql, saeId: string, feature: number): Promise<FeatureStats> {
  const records = await recordsOf(sql, saeId, feature);
  const [stats] = await sql`SELECT * FROM feature_stats WHERE sae_id = ${saeId} AND feature = ${feature}`;
  const [logits] =
    await sql`SELECT * FROM feature_logit_tokens WHERE sae_id = ${saeId} AND feature = ${feature}`;
  const pairs = (ids: number[] | undefined, values: number[] | undefined): LogitTokenId[] =>
    (ids ?? []).map((id, i) => ({ id, value: Number(values![i]) }));
  return {
    saeId,
    feature,
    frequency: stats.frequency,
    maxActivation: stats.max_activation,
    meanActivation: stats.mean_activation,
    tokens: records.tokens,
    histogram: stats.histogram,
    positiveLogits: pairs(logits?.positive_ids, logits?.positive_values),
    negativeLogits: pairs(logits?.negative_ids, logits?.negative_values),
  };
}

/** One feature's top, random and quantile windows with token ids and per-token values. */
export async function featureRecords(
  sql: Sql,
  dataDir: string,
  saeId: string,
  feature: number,
): Promise<FeatureRecords> {
  await recordsOf(sql, saeId, feature);
  // found from the data directory rather than the stored path, so a moved data directory still works
  const record = await readNeuronRecord(recordsFile(dataDir, saeId), feature);
  const indices = new Set<number>([
    ...record.top.map((w) => w.window),
    ...record.random.map((w) => w.window),
    ...record.quantiles.flatMap((q) => q.windows.map((w) => w.window)),
  ]);
  const rows = await sql`
    SELECT window_index, token_ids FROM feature_record_windows
    WHERE sae_id = ${saeId} AND window_index = ANY(${[...indices]}::int[])`;
  const ids = new Map<number, number[]>(rows.map((r) => [r.window_index, r.token_ids]));
  const withIds = (w: WindowActivations): FeatureRecordWindow => {
    const tokenIds = ids.get(w.window);
    if (!tokenIds)
      throw new Error(`records of SAE ${saeId} point at window ${w.window}, which has no token ids`);
    return { window: w.window, ids: tokenIds.slice(0, w.values.length), values: w.values };
  };
  return {
    saeId,
    feature,
    top: record.top.map(withIds),
    random: record.random.map(withIds),
    quantiles: record.quantiles.map((q) => ({ from: q.from, to: q.to, windows: q.windows.map(withIds) })),
  };
}
