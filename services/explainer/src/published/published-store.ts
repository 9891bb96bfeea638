import { createHash } from 'node:crypto';
import type { Sql } from '@loupe/common/db';
import type { UnitRecords } from '../records/records.js';
import type {
  PublishedActivationRecord,
  PublishedExplanation,
  PublishedNeuronRecord,
} from './openai-format.js';

/** Who published the dataset, as provenance says it. */
export const OPENAI_PUBLISHER = 'published by OpenAI';
// The paper ("Language models can explain neurons in language models", Bills et al. 2023) used GPT-4
// as both explainer and simulator for the released GPT-2 XL explanations.
export const OPENAI_EXPLAINER_MODEL = 'gpt-4 (published by OpenAI)';
export const OPENAI_SIMULATOR_MODEL = 'gpt-4 (published by OpenAI)';
export const OPENAI_PROMPT_VERSION = 'openai-automated-interpretability';

/** A record as stored: the published token strings, and the model's id for each where one matches exactly. */
export interface StoredRecord {
  tokens: string[];
  ids: (number | null)[];
  activations: number[];
}

export interface StoredNeuronRecords {
  top: StoredRecord[];
  random: StoredRecord[];
  quantiles: StoredRecord[][] | null;
}

export interface PublishedNeuron {
  unit: string;
  model: string;
  source: string;
  layer: number;
  neuron: number;
  /** null when the records file was missing or malformed */
  record: PublishedNeuronRecord | null;
  /** null when the explanations file was missing or malformed */
  explanations: PublishedExplanation[] | null;
}

/** Maps a published token string to the model's token id, or null when no token reads exactly so. */
export type TokenIds = (token: string) => number | null;

const storedRecord = (r: PublishedActivationRecord, ids: TokenIds): StoredRecord => ({
  tokens: r.tokens,
  ids: r.tokens.map(ids),
  activations: r.activations,
});

export function storedRecords(record: PublishedNeuronRecord, ids: TokenIds): StoredNeuronRecords {
  return {
    top: record.top.map((r) => storedRecord(r, ids)),
    random: record.random.map((r) => storedRecord(r, ids)),
    quantiles: record.quantiles?.map((q) => q.map((r) => storedRecord(r, ids))) ?? null,
  };
}

/** The same unit and published sentence always get the same id: importing again never duplicates it. */
export function publishedExplanationId(unit: string, index: number, explanation: string): string {
  const h = createHash('sha256').update(`openai\0${unit}\0${index}\0${explanation}`).digest('hex');
  // UUID layout with version 5 and the RFC 4122 variant, so it is a well-formed uuid column value.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((Number.parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function explanationProvenance(e: PublishedExplanation, source: string, index: number) {
  return {
    published_by: 'OpenAI',
    source,
    explainer_model: OPENAI_EXPLAINER_MODEL,
    simulator_model: OPENAI_SIMULATOR_MODEL,
    prompt_version: OPENAI_PROMPT_VERSION,
    score_name: 'ev_correlation_score',
    rsquared_score: e.rsquared,
    absolute_dev_explained_score: e.absoluteDevExplained,
    scored_sequences: e.sequences,
    index,
  };
}

const NULL_SCORE_REASON =
  'OpenAI published no ev_correlation_score for this explanation (the correlation is undefined, e.g. a constant simulation)';

/**
 * Stores one neuron in one transaction (its row, records, moments and explanations), so a killed
 * import leaves each neuron either whole or absent; running it again overwrites the same rows.
 */
export async function savePublishedNeuron(sql: Sql, neuron: PublishedNeuron, ids: TokenIds): Promise<void> {
  const r = neuron.record;
  const records = r ? storedRecords(r, ids) : null;
  const maxActivation = r ? Math.max(...r.top.flatMap((x) => x.activations)) : null;
  const best = bestExplanation(neuron.explanations ?? []);
  await sql.begin(async (tx) => {
    await tx`
      INSERT INTO published_neurons (unit, model, source, publisher, layer, neuron, mean, variance, skewness, kurtosis,
        max_activation, quantile_boundaries, records, explanations, best_score, best_explanation)
      VALUES (${neuron.unit}, ${neuron.model}, ${neuron.source}, ${OPENAI_PUBLISHER}, ${neuron.layer}, ${neuron.neuron},
        ${r?.mean ?? null}, ${r?.variance ?? null}, ${r?.skewness ?? null}, ${r?.kurtosis ?? null}, ${maxActivation},
        ${r?.quantileBoundaries ? tx.json(r.quantileBoundaries) : null},
        ${records ? tx.json(records as never) : null}, ${neuron.explanations?.length ?? null},
        ${best?.evCorrelation ?? null}, ${best?.explanation ?? null})
      ON CONFLICT (unit) DO UPDATE SET
        source = EXCLUDED.source, publisher = EXCLUDED.publisher,
        mean = COALESCE(EXCLUDED.mean, published_neurons.mean),
        variance = COALESCE(EXCLUDED.variance, published_neurons.variance),
        skewness = COALESCE(EXCLUDED.skewness, published_neurons.skewness),
        kurtosis = COALESCE(EXCLUDED.kurtosis, published_neurons.kurtosis),
        max_activation = COALESCE(EXCLUDED.max_activation, published_neurons.max_activation),
        quantile_boundaries = COALESCE(EXCLUDED.quantile_boundaries, published_neurons.quantile_boundaries),
        records = COALESCE(EXCLUDED.records, published_neurons.records),
        explanations = COALESCE(EXCLUDED.explanations, published_neurons.explanations),
        best_score = CASE WHEN EXCLUDED.explanations IS NULL THEN published_neurons.best_score ELSE EXCLUDED.best_score END,
        best_explanation = CASE WHEN EXCLUDED.explanations IS NULL THEN published_neurons.best_explanation
          ELSE EXCLUDED.best_explanation END,
        imported_at = now()`;
    for (const [index, e] of (neuron.explanations ?? []).entries()) {
      const id = publishedExplanationId(neuron.unit, index, e.explanation);
      await tx`
        INSERT INTO explanations (id, unit, explanation, method, score, reason, explainer_model, simulator_model,
          prompt_version, provenance)
        VALUES (${id}, ${neuron.unit}, ${e.explanation}, 'simulation', ${e.evCorrelation},
          ${e.evCorrelation === null ? NULL_SCORE_REASON : null}, ${OPENAI_EXPLAINER_MODEL}, ${OPENAI_SIMULATOR_MODEL},
          ${OPENAI_PROMPT_VERSION}, ${tx.json(explanationProvenance(e, neuron.source, index) as never)})
        ON CONFLICT (id) DO UPDATE SET score = EXCLUDED.score, reason = EXCLUDED.reason,
          provenance = EXCLUDED.provenance`;
    }
  });
}

/** The explanation with the best score (OpenAI lists its best first, but the order is not promised). */
function bestExplanation(explanations: PublishedExplanation[]): PublishedExplanation | null {
  let best: PublishedExplanation | null = null;
  for (const e of explanations)
    if (!best || (e.evCorrelation ?? -Infinity) > (best.evCorrelation ?? -Infinity)) best = e;
  return best;
}

/** Of the given units, those already imported whole (records and explanations both read). */
export async function completeUnits(sql: Sql, units: string[]): Promise<Set<string>> {
  const done = new Set<string>();
  for (let i = 0; i < units.length; i += 10_000) {
    const rows = await sql<{ unit: string }[]>`
      SELECT unit FROM published_neurons
      WHERE unit = ANY(${units.slice(i, i + 10_000)}::text[]) AND records IS NOT NULL AND explanations IS NOT NULL`;
    for (const row of rows) done.add(row.unit);
  }
  return done;
}

export interface PublishedNeuronRow {
  unit: string;
  source: string;
  publisher: string;
  layer: number;
  neuron: number;
  mean: number | null;
  variance: number | null;
  skewness: number | null;
  kurtosis: number | null;
  maxActivation: number | null;
  quantileBoundaries: number[] | null;
  records: StoredNeuronRecords | null;
  explanations: number | null;
  bestScore: number | null;
  bestExplanation: string | null;
}

export async function getPublishedNeuron(sql: Sql, unit: string): Promise<PublishedNeuronRow | null> {
  const [row] = await sql`SELECT * FROM published_neurons WHERE unit = ${unit}`;
  if (!row) return null;
  return {
    unit: row.unit,
    source: row.source,
    publisher: row.publisher,
    layer: row.layer,
    neuron: row.neuron,
    mean: row.mean,
    variance: row.variance,
    skewness: row.skewness,
    kurtosis: row.kurtosis,
    maxActivation: row.max_activation,
    quantileBoundaries: row.quantile_boundaries,
    records: row.records,
    explanations: row.explanations,
    bestScore: row.best_score,
    bestExplanation: row.best_explanation,
  };
}

/**
 * The published records as the explainer's records: top = most_positive_activation_records, random =
 * random_sample, in the published order, ids saying which list and position each came from.
 */
export function publishedUnitRecords(records: StoredNeuronRecords): UnitRecords {
  const side = (name: 'top' | 'random', list: StoredRecord[]) =>
    list.map((r, i) => ({ id: `openai:${name}:${i}`, tokens: r.tokens, activations: r.activations }));
  return { top: side('top', records.top), random: side('random', records.random) };
}
