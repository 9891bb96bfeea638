import { UserInputError } from '@loupe/common';
import type { Sql } from '@loupe/common/db';
import type {
  FeatureDensityResponse,
  FeatureRecordsResponse__Output,
  FeatureStatsResponse__Output,
  ListFeaturesResponse,
} from '@loupe/common/grpc';
import { readNeuronRecord, type WindowActivations } from '@loupe/records';
import { recordsFile } from './sae-library.js';
import {
  FEATURE_ORDER_NAMES,
  type FeatureOrder,
  type FeatureRecordsRow,
  featureFrequencyBins,
  findSae,
  getFeatureLogitTokens,
  getFeatureRecordsRow,
  getFeatureStats,
  listFeatureStats,
  recordWindowTokenIds,
} from './sae-store.js';

// What is read about computed features: statistics, logit tokens and records of one feature (the
// records file beside the SAE's weights, token ids from the store), and pages of an SAE's statistics.

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

/** The SAE's records bookkeeping, or NOT_FOUND saying how to compute them. */
async function computedRecords(sql: Sql, saeId: string): Promise<FeatureRecordsRow> {
  const row = await getFeatureRecordsRow(sql, saeId);
  if (!row) {
    throw new UserInputError(
      `SAE "${saeId}" has no feature records yet; compute them with \`loupe sae features ${saeId} --activations <capture-job-dir>\``,
      'NOT_FOUND',
    );
  }
  return row;
}

async function recordsOf(sql: Sql, saeId: string, feature: number): Promise<FeatureRecordsRow> {
  const sae = await findSae(sql, saeId);
  if (!Number.isInteger(feature) || feature < 0 || feature >= sae.dSae) {
    throw new UserInputError(
      `feature ${feature} is out of range: SAE "${saeId}" has features 0-${sae.dSae - 1}`,
      'NOT_FOUND',
    );
  }
  return computedRecords(sql, saeId);
}

/** Statistics and logit tokens of one feature. */
export async function featureStats(sql: Sql, saeId: string, feature: number): Promise<FeatureStats> {
  const records = await recordsOf(sql, saeId, feature);
  const stats = await getFeatureStats(sql, saeId, feature);
  if (!stats) throw new Error(`records of SAE ${saeId} have no statistics of feature ${feature}`);
  const logits = await getFeatureLogitTokens(sql, saeId, feature);
  const pairs = (ids: number[] | undefined, values: number[] | undefined): LogitTokenId[] =>
    (ids ?? []).map((id, i) => ({ id, value: Number(values![i]) }));
  return {
    saeId,
    feature,
    frequency: stats.frequency,
    maxActivation: stats.maxActivation,
    meanActivation: stats.meanActivation,
    tokens: records.tokens,
    histogram: stats.histogram,
    positiveLogits: pairs(logits?.positiveIds, logits?.positiveValues),
    negativeLogits: pairs(logits?.negativeIds, logits?.negativeValues),
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
  const ids = await recordWindowTokenIds(sql, saeId, [...indices]);
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

/** The statistics of an SAE's features, ordered and paged for browsing (FeatureStats without logits). */
export async function listFeatures(
  sql: Sql,
  request: { saeId: string; orderBy: string; offset: number; limit: number },
): Promise<ListFeaturesResponse> {
  const orderBy = request.orderBy || 'feature';
  if (!(FEATURE_ORDER_NAMES as string[]).includes(orderBy))
    throw new UserInputError(`order_by "${orderBy}": expected one of ${FEATURE_ORDER_NAMES.join(', ')}`);
  if (request.offset < 0 || request.limit < 0)
    throw new UserInputError(`offset ${request.offset} and limit ${request.limit} must not be negative`);
  await findSae(sql, request.saeId);
  const records = await computedRecords(sql, request.saeId);
  const { total, features } = await listFeatureStats(sql, request.saeId, {
    orderBy: orderBy as FeatureOrder,
    offset: request.offset,
    limit: request.limit,
  });
  return { saeId: request.saeId, total, tokens: records.tokens, features };
}

/** Bins a quarter of a decade wide: fine enough to show the shape, as SAE dashboards draw it. */
const DENSITY_BIN_DECADES = 0.25;

/**
 * The feature-density histogram of an SAE: how many features fire on what fraction of tokens, on a
 * log10 axis (every bin between the rarest and the densest feature present, empty ones included), with
 * the features that never fired counted apart.
 */
export async function featureDensity(sql: Sql, saeId: string): Promise<FeatureDensityResponse> {
  await findSae(sql, saeId);
  const records = await computedRecords(sql, saeId);
  const { features, dead, bins } = await featureFrequencyBins(sql, saeId, DENSITY_BIN_DECADES);
  const counts = new Map(bins.map((b) => [b.bin, b.count]));
  const dense = [];
  if (bins.length > 0) {
    for (let bin = bins[0].bin; bin <= bins[bins.length - 1].bin; bin++) {
      dense.push({
        log10From: bin * DENSITY_BIN_DECADES,
        log10To: (bin + 1) * DENSITY_BIN_DECADES,
        count: counts.get(bin) ?? 0,
      });
    }
  }
  return { saeId, tokens: records.tokens, features, dead, bins: dense };
}
