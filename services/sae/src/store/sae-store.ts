import { createHash } from 'node:crypto';
import { UserInputError } from '@loupe/common';
import { nearestByCosine, type Sql, toVector } from '@loupe/common/db';
import type { LogitTokens } from '@loupe/model';
import type { RecordSet } from '@loupe/records';

// Every statement on the sae schema's SAE and feature tables (migrations 0001, 0002 and the saes
// columns of 0003): the library's SAEs, their decoder directions with the HNSW indexes over them, and
// their feature statistics, record windows and logit tokens. Everything else calls these functions.

/** One row of `saes`; `trainedAs` and `metrics` are null until the training migration has run. */
export interface SaeRow {
  id: string;
  model: string;
  hook: string;
  architecture: string;
  dIn: number;
  dSae: number;
  cfg: Record<string, unknown>;
  weightsPath: string;
  createdAt: Date;
  trainedAs: string | null;
  metrics: Record<string, unknown> | null;
}

/** What registering an SAE writes; the database fills in the rest of its row. */
export type NewSae = Omit<SaeRow, 'createdAt' | 'trainedAs' | 'metrics'>;

export interface Neighbour {
  saeId: string;
  index: number;
  /** cosine similarity to the query */
  similarity: number;
}

/** One row of `feature_records`: where an SAE's records file is and what it was computed over. */
export interface FeatureRecordsRow {
  saeId: string;
  path: string;
  source: string;
  tokens: number;
  windows: number;
  windowLength: number;
}

/** One row of `feature_stats`. */
export interface FeatureStatsRow {
  feature: number;
  frequency: number;
  maxActivation: number;
  meanActivation: number;
  histogram: number[];
}

/** One row of `feature_logit_tokens`. */
export interface FeatureLogitTokensRow {
  positiveIds: number[];
  positiveValues: number[];
  negativeIds: number[];
  negativeValues: number[];
}

/** ListFeatures' orders: SQL of each (largest first; the feature breaks ties so pages are stable). */
const FEATURE_ORDERS = {
  feature: 'feature',
  max_activation: 'max_activation DESC, feature',
  frequency: 'frequency DESC, feature',
} as const;

export type FeatureOrder = keyof typeof FEATURE_ORDERS;
export const FEATURE_ORDER_NAMES = Object.keys(FEATURE_ORDERS) as FeatureOrder[];

const BATCH = 500;

const SAE_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** The library's rule for SAE ids (they appear in unit ids and URLs), checked wherever one is chosen. */
export function checkSaeId(id: string): string {
  if (!SAE_ID.test(id))
    throw new UserInputError(`SAE id "${id}" may use letters, digits, ".", "_", ":" and "-" (1-100)`);
  return id;
}

// ── SAEs ────────────────────────────────────────────────────────────────────────────────────────────

/** The SAE's row, or null when the library has none by that id. */
export async function getSae(sql: Sql, id: string): Promise<SaeRow | null> {
  const [row] = await sql`SELECT * FROM saes WHERE id = ${id}`;
  return row ? toSaeRow(row) : null;
}

/** The SAE's row, or NOT_FOUND naming a few SAEs that do exist. */
export async function findSae(sql: Sql, id: string): Promise<SaeRow> {
  const row = await getSae(sql, id);
  if (row) return row;
  const known = await saeIds(sql, 11);
  const list = known.slice(0, 10);
  throw new UserInputError(
    `unknown SAE "${id}"; ` +
      (list.length
        ? `the library has ${list.join(', ')}${known.length > 10 ? ', …' : ''}`
        : 'the library is empty (import one with `loupe sae import`)'),
    'NOT_FOUND',
  );
}

/** The first `limit` SAE ids in id order (for messages that say what exists). */
export async function saeIds(sql: Sql, limit: number): Promise<string[]> {
  const rows = await sql`SELECT id FROM saes ORDER BY id LIMIT ${limit}`;
  return rows.map((r) => r.id as string);
}

/** The library's SAEs, oldest first; an empty model or hook matches every one. */
export async function listSaes(sql: Sql, filter: { model: string; hook: string }): Promise<SaeRow[]> {
  const rows = await sql`
    SELECT * FROM saes
    WHERE (${filter.model} = '' OR model = ${filter.model}) AND (${filter.hook} = '' OR hook = ${filter.hook})
    ORDER BY created_at, id`;
  return rows.map(toSaeRow);
}

/** Whether `saes` has the metrics column (added with training jobs, migration 0003). */
export async function saesHaveMetrics(sql: Sql): Promise<boolean> {
  const rows = await sql`
    SELECT 1 FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'saes' AND column_name = 'metrics'`;
  return rows.length > 0;
}

/** Records an SAE's last evaluation (EvalMetrics, camelCase keys). */
export async function saveSaeMetrics(sql: Sql, id: string, metrics: object): Promise<void> {
  await sql`UPDATE saes SET metrics = ${sql.json(metrics as Parameters<typeof sql.json>[0])} WHERE id = ${id}`;
}

/** Records which training job made an SAE, as what, and its held-out metrics (null when none). */
export async function saveTrainingOrigin(
  sql: Sql,
  id: string,
  origin: { trainedAs: string; trainingJobId: string; metrics: object | null },
): Promise<void> {
  const metrics = origin.metrics ? sql.json(origin.metrics as Parameters<typeof sql.json>[0]) : null;
  await sql`
    UPDATE saes SET trained_as = ${origin.trainedAs}, training_job_id = ${origin.trainingJobId}, metrics = ${metrics}
    WHERE id = ${id}`;
}

/** Whether the library has an SAE with this id. */
export async function saeExists(sql: Sql, id: string): Promise<boolean> {
  const [row] = await sql`SELECT 1 FROM saes WHERE id = ${id}`;
  return row !== undefined;
}

function toSaeRow(row: Record<string, unknown>): SaeRow {
  return {
    id: row.id as string,
    model: row.model as string,
    hook: row.hook as string,
    architecture: row.architecture as string,
    dIn: Number(row.d_in),
    dSae: Number(row.d_sae),
    cfg: row.cfg as Record<string, unknown>,
    weightsPath: row.weights_path as string,
    createdAt: row.created_at as Date,
    trainedAs: (row.trained_as as string | undefined) ?? null,
    metrics: (row.metrics as Record<string, unknown> | undefined) ?? null,
  };
}

// ── Decoder directions and nearest-feature search ───────────────────────────────────────────────────

/** Cross-SAE search uses one index per width; search within an SAE uses that SAE's own index. */
function widthIndex(dIn: number): string {
  return `features_decoder_hnsw_${dIn}`;
}

function saeIndex(id: string): string {
  return `features_decoder_hnsw_sae_${createHash('sha256').update(id).digest('hex').slice(0, 16)}`;
}

/**
 * Registers an SAE and stores one feature row per latent with its decoder direction (rows of W_dec,
 * [d_sae, d_in]). Idempotent per SAE id: a second call replaces the features.
 */
export async function saveFeatures(sql: Sql, sae: NewSae, decoder: Float32Array): Promise<void> {
  if (decoder.length !== sae.dSae * sae.dIn) {
    throw new UserInputError(
      `decoder has ${decoder.length} values; ${sae.dSae} features × d_in ${sae.dIn} needs ${sae.dSae * sae.dIn}`,
    );
  }
  checkSaeId(sae.id);
  // pgvector's HNSW indexes `vector` columns of up to 2,000 dimensions (GPT-2 XL has 1,600)
  if (!Number.isInteger(sae.dIn) || sae.dIn <= 0 || sae.dIn > 2000) {
    throw new UserInputError(`d_in ${sae.dIn} is not a supported width (1-2000)`);
  }
  await sql`
    INSERT INTO saes (id, model, hook, architecture, d_in, d_sae, cfg, weights_path)
    VALUES (${sae.id}, ${sae.model}, ${sae.hook}, ${sae.architecture}, ${sae.dIn}, ${sae.dSae},
            ${sql.json(sae.cfg as Parameters<typeof sql.json>[0])}, ${sae.weightsPath})
    ON CONFLICT (id) DO UPDATE SET model = EXCLUDED.model, hook = EXCLUDED.hook, architecture = EXCLUDED.architecture,
      d_in = EXCLUDED.d_in, d_sae = EXCLUDED.d_sae, cfg = EXCLUDED.cfg, weights_path = EXCLUDED.weights_path`;
  await sql`DELETE FROM features WHERE sae_id = ${sae.id}`;
  for (let first = 0; first < sae.dSae; first += BATCH) {
    const rows = [];
    for (let i = first; i < Math.min(sae.dSae, first + BATCH); i++) {
      rows.push({
        sae_id: sae.id,
        index: i,
        d_in: sae.dIn,
        decoder: toVector(decoder.subarray(i * sae.dIn, (i + 1) * sae.dIn)),
      });
    }
    await sql`INSERT INTO features ${sql(rows)}`;
  }
  // after the rows: building an HNSW index over existing rows is far faster than growing it row by row
  await ensureIndexes(sql, sae.id, sae.dIn);
}

/**
 * HNSW cosine indexes over `decoder::vector(d_in)`: one per width (created with the first SAE of that
 * width) and one per SAE. Partial indexes, because an index needs one dimension and because a filtered
 * query on a shared index would be answered by a primary-key scan instead.
 */
async function ensureIndexes(sql: Sql, id: string, dIn: number): Promise<void> {
  const expression = `USING hnsw ((decoder::vector(${dIn})) vector_cosine_ops)`;
  await sql.unsafe(
    `CREATE INDEX IF NOT EXISTS ${widthIndex(dIn)} ON features ${expression} WHERE d_in = ${dIn}`,
  );
  await sql.unsafe(
    `CREATE INDEX IF NOT EXISTS ${saeIndex(id)} ON features ${expression} WHERE sae_id = '${id}'`,
  );
}

/**
 * The k features whose decoder directions are closest (cosine) to `query`, within one SAE or across
 * every SAE of that width. Uses the HNSW index with the given ef_search (set for this query only).
 */
export async function nearestFeatures(
  sql: Sql,
  query: ArrayLike<number>,
  options: { k: number; saeId?: string; efSearch?: number; exact?: boolean },
): Promise<Neighbour[]> {
  const d = query.length;
  if (!Number.isInteger(options.k) || options.k < 1 || options.k > 1000)
    throw new UserInputError(`k must be 1-1000, got ${options.k}`);
  // the predicate must match a partial index's, so width and SAE id are literals (an integer, and an
  // id checked against SAE_ID)
  const where =
    options.saeId === undefined ? `d_in = ${d}` : `sae_id = '${checkSaeId(options.saeId)}' AND d_in = ${d}`;
  const rows = await nearestByCosine(sql, {
    table: 'features',
    column: 'decoder',
    where,
    columns: 'sae_id, index',
    query,
    k: options.k,
    efSearch: options.efSearch,
    exact: options.exact,
  });
  return rows.map((r) => ({
    saeId: r.sae_id as string,
    index: Number(r.index),
    similarity: Number(r.similarity),
  }));
}

// ── Feature statistics, record windows and logit tokens ─────────────────────────────────────────────

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

/** The SAE's feature records bookkeeping, or null when its records have not been computed. */
export async function getFeatureRecordsRow(sql: Sql, saeId: string): Promise<FeatureRecordsRow | null> {
  const [row] = await sql`SELECT * FROM feature_records WHERE sae_id = ${saeId}`;
  if (!row) return null;
  return {
    saeId,
    path: row.path,
    source: row.source,
    tokens: Number(row.tokens),
    windows: row.windows,
    windowLength: row.window_length,
  };
}

/** Which of these SAEs have their feature records computed. */
export async function saesWithFeatureRecords(sql: Sql, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await sql`SELECT sae_id FROM feature_records WHERE sae_id = ANY(${ids}::text[])`;
  return new Set(rows.map((r) => r.sae_id as string));
}

/** One feature's statistics (undefined when the SAE's records do not cover it). */
export async function getFeatureStats(
  sql: Sql,
  saeId: string,
  feature: number,
): Promise<FeatureStatsRow | undefined> {
  const [row] = await sql`SELECT * FROM feature_stats WHERE sae_id = ${saeId} AND feature = ${feature}`;
  return row ? toStatsRow(row) : undefined;
}

/** A page of an SAE's feature statistics in one of FEATURE_ORDERS, with how many there are in all. */
export async function listFeatureStats(
  sql: Sql,
  saeId: string,
  page: { orderBy: FeatureOrder; offset: number; limit: number },
): Promise<{ total: number; features: FeatureStatsRow[] }> {
  const [{ total }] = await sql`SELECT count(*)::int AS total FROM feature_stats WHERE sae_id = ${saeId}`;
  const rows = await sql`
    SELECT feature, frequency, max_activation, mean_activation, histogram
    FROM feature_stats WHERE sae_id = ${saeId}
    ORDER BY ${sql.unsafe(FEATURE_ORDERS[page.orderBy])}
    OFFSET ${page.offset} ${page.limit > 0 ? sql`LIMIT ${page.limit}` : sql``}`;
  return { total, features: rows.map(toStatsRow) };
}

/**
 * How an SAE's features spread over log10 firing frequency: the count per bin of `binWidth` decades
 * (bin b covers [b·width, (b+1)·width)), and the features that never fired (frequency 0) apart.
 */
export async function featureFrequencyBins(
  sql: Sql,
  saeId: string,
  binWidth: number,
): Promise<{ features: number; dead: number; bins: { bin: number; count: number }[] }> {
  const [totals] = await sql<{ features: number; dead: number }[]>`
    SELECT count(*)::int AS features, (count(*) FILTER (WHERE frequency <= 0))::int AS dead
    FROM feature_stats WHERE sae_id = ${saeId}`;
  const bins = await sql<{ bin: number; count: number }[]>`
    SELECT floor(log(frequency) / ${binWidth})::int AS bin, count(*)::int AS count
    FROM feature_stats WHERE sae_id = ${saeId} AND frequency > 0
    GROUP BY 1 ORDER BY 1`;
  return { ...totals, bins: [...bins] };
}

function toStatsRow(row: Record<string, unknown>): FeatureStatsRow {
  return {
    feature: row.feature as number,
    frequency: row.frequency as number,
    maxActivation: row.max_activation as number,
    meanActivation: row.mean_activation as number,
    histogram: row.histogram as number[],
  };
}

/** One feature's logit tokens, or null when they were not computed. */
export async function getFeatureLogitTokens(
  sql: Sql,
  saeId: string,
  feature: number,
): Promise<FeatureLogitTokensRow | null> {
  const [row] =
    await sql`SELECT * FROM feature_logit_tokens WHERE sae_id = ${saeId} AND feature = ${feature}`;
  if (!row) return null;
  return {
    positiveIds: row.positive_ids,
    positiveValues: row.positive_values,
    negativeIds: row.negative_ids,
    negativeValues: row.negative_values,
  };
}

/** Token ids of these record windows of an SAE, by window index (windows it has none of are absent). */
export async function recordWindowTokenIds(
  sql: Sql,
  saeId: string,
  windows: number[],
): Promise<Map<number, number[]>> {
  const rows = await sql`
    SELECT window_index, token_ids FROM feature_record_windows
    WHERE sae_id = ${saeId} AND window_index = ANY(${windows}::int[])`;
  return new Map(rows.map((r) => [r.window_index as number, r.token_ids as number[]]));
}
