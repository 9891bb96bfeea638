import { UserInputError } from '@loupe/common';
import type { Sql } from '@loupe/common/db';

export interface PublishedNeuronHit {
  unit: string;
  layer: number;
  neuron: number;
  /** the best published score of the neuron's explanations; null when none has one */
  score: number | null;
  explanation: string | null;
  maxActivation: number | null;
}

const MAX_LIMIT = 1000;

/**
 * Imported neurons of a model by their best published score, best first (unscored last), optionally of
 * one layer and at or above a score; a page of `limit` from `offset`, with the count of all that match.
 */
export async function listPublishedNeurons(
  sql: Sql,
  options: { model: string; layer?: number; minScore?: number; offset?: number; limit?: number },
): Promise<{ total: number; neurons: PublishedNeuronHit[] }> {
  const limit = options.limit ?? 50;
  const offset = options.offset ?? 0;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw new UserInputError(`limit ${limit}: expected 1 to ${MAX_LIMIT}`);
  if (!Number.isInteger(offset) || offset < 0)
    throw new UserInputError(`offset ${offset}: expected a whole number ≥ 0`);
  if (options.minScore !== undefined && !Number.isFinite(options.minScore))
    throw new UserInputError(`minimum score ${options.minScore}: expected a number, e.g. 0.8`);
  const where = sql`model = ${options.model}
    ${options.layer === undefined ? sql`` : sql`AND layer = ${options.layer}`}
    ${options.minScore === undefined ? sql`` : sql`AND best_score >= ${options.minScore}`}`;
  const [{ total }] = await sql<
    { total: number }[]
  >`SELECT count(*)::int AS total FROM published_neurons WHERE ${where}`;
  const rows = await sql<
    {
      unit: string;
      layer: number;
      neuron: number;
      best_score: number | null;
      best_explanation: string | null;
      max_activation: number | null;
    }[]
  >`
    SELECT unit, layer, neuron, best_score, best_explanation, max_activation FROM published_neurons
    WHERE ${where}
    ORDER BY best_score DESC NULLS LAST, layer, neuron
    LIMIT ${limit} OFFSET ${offset}`;
  return {
    total,
    neurons: rows.map((r) => ({
      unit: r.unit,
      layer: r.layer,
      neuron: r.neuron,
      score: r.best_score,
      explanation: r.best_explanation,
      maxActivation: r.max_activation,
    })),
  };
}

export interface LayerScores {
  layer: number;
  neurons: number;
  /** neurons whose best published score is null */
  unscored: number;
  mean: number | null;
  /** neurons at or above `threshold` */
  atLeastThreshold: number;
  /** counts per bin of `edges` (bins [e_i, e_i+1), the last one closed) */
  histogram: number[];
}

/**
 * The distribution of best published scores per layer (the paper's picture of how scores fall with
 * depth): for each layer, a histogram over `bins` equal bins of [-1, 1], the mean, and how many reach
 * `threshold`.
 */
export async function publishedScoresByLayer(
  sql: Sql,
  options: { model: string; bins?: number; threshold?: number },
): Promise<{ edges: number[]; threshold: number; layers: LayerScores[] }> {
  const bins = options.bins ?? 20;
  const threshold = options.threshold ?? 0.8;
  if (!Number.isInteger(bins) || bins < 1 || bins > 200)
    throw new UserInputError(`bins ${bins}: expected 1 to 200`);
  const rows = await sql<
    { layer: number; bin: number | null; n: number; sum: number | null; high: number }[]
  >`
    -- LEAST skips nulls, so an unscored neuron is kept null explicitly; a score of exactly 1 joins the last bin
    SELECT layer, CASE WHEN best_score IS NULL THEN NULL ELSE LEAST(width_bucket(best_score, -1, 1, ${bins}), ${bins}) END AS bin, count(*)::int AS n,
      sum(best_score) AS sum, count(*) FILTER (WHERE best_score >= ${threshold})::int AS high
    FROM published_neurons WHERE model = ${options.model}
    GROUP BY 1, 2 ORDER BY 1, 2`;
  const layers = new Map<number, LayerScores & { sum: number }>();
  for (const r of rows) {
    const layer =
      layers.get(r.layer) ??
      ({
        layer: r.layer,
        neurons: 0,
        unscored: 0,
        mean: null,
        atLeastThreshold: 0,
        histogram: new Array(bins).fill(0),
        sum: 0,
      } as LayerScores & { sum: number });
    layers.set(r.layer, layer);
    layer.neurons += r.n;
    layer.atLeastThreshold += r.high;
    if (r.bin === null) layer.unscored += r.n;
    else {
      // width_bucket puts scores below -1 in bin 0; correlations cannot be, so clamp for safety
      layer.histogram[Math.max(1, r.bin) - 1] += r.n;
      layer.sum += Number(r.sum);
    }
  }
  return {
    edges: Array.from({ length: bins + 1 }, (_, i) => -1 + (2 * i) / bins),
    threshold,
    layers: [...layers.values()].map(({ sum, ...l }) => ({
      ...l,
      mean: l.neurons - l.unscored > 0 ? sum / (l.neurons - l.unscored) : null,
    })),
  };
}
