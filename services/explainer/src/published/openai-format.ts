import { UserInputError } from '@loupe/common';

// OpenAI's automated-interpretability dataset (neuron_explainer's activations.py and explanations.py):
// each object is a dataclass written as JSON, with a `dataclass_name` key in newer files and without it
// in older ones, where their loader recognises a dataclass by its field names (all of them, or a subset
// when fields were added later). Both forms are read the same way here.

/** Field names of the dataclasses the dataset holds (without `dataclass_name`), as activations.py and explanations.py define them. */
const DATACLASS_FIELDS: Record<string, readonly string[]> = {
  ActivationRecord: ['tokens', 'activations'],
  NeuronId: ['layer_index', 'neuron_index'],
  NeuronRecord: [
    'neuron_id',
    'random_sample',
    'random_sample_by_quantile',
    'quantile_boundaries',
    'mean',
    'variance',
    'skewness',
    'kurtosis',
    'most_positive_activation_records',
  ],
  SequenceSimulation: [
    'tokens',
    'expected_activations',
    'activation_scale',
    'distribution_values',
    'distribution_probabilities',
    'uncalibrated_simulation',
  ],
  ScoredSequenceSimulation: [
    'simulation',
    'true_activations',
    'ev_correlation_score',
    'rsquared_score',
    'absolute_dev_explained_score',
  ],
  ScoredSimulation: [
    'scored_sequence_simulations',
    'ev_correlation_score',
    'rsquared_score',
    'absolute_dev_explained_score',
  ],
  ScoredExplanation: ['explanation', 'scored_simulation'],
  NeuronSimulationResults: ['neuron_id', 'scored_explanations'],
};

/** One window of text with the neuron's activation at each token, as OpenAI published it. */
export interface PublishedActivationRecord {
  tokens: string[];
  activations: number[];
}

export interface PublishedNeuronRecord {
  layer: number;
  neuron: number;
  top: PublishedActivationRecord[];
  random: PublishedActivationRecord[];
  quantiles: PublishedActivationRecord[][] | null;
  quantileBoundaries: number[] | null;
  /** null where the file says NaN or null */
  mean: number | null;
  variance: number | null;
  skewness: number | null;
  kurtosis: number | null;
}

export interface PublishedExplanation {
  explanation: string;
  /** ev_correlation_score of the whole scored simulation: OpenAI's preferred score; null when undefined */
  evCorrelation: number | null;
  rsquared: number | null;
  absoluteDevExplained: number | null;
  /** scored sequences, each with the simulator's expected activations and the true ones */
  sequences: number;
}

export interface PublishedNeuronExplanations {
  layer: number;
  neuron: number;
  explanations: PublishedExplanation[];
}

type Obj = Record<string, unknown>;

/**
 * Which dataclass an object is: its `dataclass_name`, or else the one whose fields are exactly its keys,
 * or else the first whose fields include all its keys (their loader's rule for files written before a
 * field was added).
 */
export function dataclassOf(value: Obj): string | null {
  if (typeof value.dataclass_name === 'string') return value.dataclass_name;
  const keys = Object.keys(value);
  const entries = Object.entries(DATACLASS_FIELDS);
  const exact = entries.find(
    ([, fields]) => fields.length === keys.length && keys.every((k) => fields.includes(k)),
  );
  if (exact) return exact[0];
  if (keys.length === 0) return null;
  return entries.find(([, fields]) => keys.every((k) => fields.includes(k)))?.[0] ?? null;
}

function expectDataclass(value: unknown, name: string, where: string): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new UserInputError(`${where}: expected a ${name} object`);
  const found = dataclassOf(value as Obj);
  if (found !== name)
    throw new UserInputError(
      `${where}: expected a ${name}, found ${found ? `a ${found}` : `an object with fields ${Object.keys(value).join(', ')}`}`,
    );
  return value as Obj;
}

const list = (value: unknown, where: string): unknown[] => {
  if (!Array.isArray(value)) throw new UserInputError(`${where}: expected a list`);
  return value;
};

/** A float field that may be absent, null or NaN (their defaults are math.nan): null for all three. */
function optionalNumber(value: unknown, where: string): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number') throw new UserInputError(`${where}: expected a number or null`);
  return Number.isFinite(value) ? value : null;
}

function neuronId(value: unknown, where: string): { layer: number; neuron: number } {
  const id = expectDataclass(value, 'NeuronId', where);
  const { layer_index: layer, neuron_index: neuron } = id;
  if (
    !Number.isInteger(layer) ||
    !Number.isInteger(neuron) ||
    (layer as number) < 0 ||
    (neuron as number) < 0
  )
    throw new UserInputError(`${where}: layer_index and neuron_index must be whole numbers ≥ 0`);
  return { layer: layer as number, neuron: neuron as number };
}

function activationRecord(value: unknown, where: string): PublishedActivationRecord {
  const record = expectDataclass(value, 'ActivationRecord', where);
  const tokens = list(record.tokens, `${where}.tokens`);
  const activations = list(record.activations, `${where}.activations`);
  if (!tokens.every((t) => typeof t === 'string'))
    throw new UserInputError(`${where}.tokens: expected strings`);
  if (!activations.every((a) => typeof a === 'number' && Number.isFinite(a)))
    throw new UserInputError(`${where}.activations: expected finite numbers`);
  if (tokens.length !== activations.length)
    throw new UserInputError(`${where}: ${tokens.length} tokens but ${activations.length} activations`);
  return { tokens: tokens as string[], activations: activations as number[] };
}

const records = (value: unknown, where: string) =>
  value === undefined || value === null
    ? []
    : list(value, where).map((r, i) => activationRecord(r, `${where}[${i}]`));

/** A collated-activations file: one NeuronRecord. */
export function parseNeuronRecord(value: unknown, where: string): PublishedNeuronRecord {
  const record = expectDataclass(value, 'NeuronRecord', where);
  const id = neuronId(record.neuron_id, `${where}: neuron_id`);
  const top = records(record.most_positive_activation_records, `${where}: most_positive_activation_records`);
  if (top.length === 0) throw new UserInputError(`${where}: most_positive_activation_records is empty`);
  const byQuantile = record.random_sample_by_quantile;
  const boundaries = record.quantile_boundaries;
  return {
    ...id,
    top,
    random: records(record.random_sample, `${where}: random_sample`),
    quantiles:
      byQuantile === undefined || byQuantile === null
        ? null
        : list(byQuantile, `${where}: random_sample_by_quantile`).map((q, i) =>
            records(q, `${where}: random_sample_by_quantile[${i}]`),
          ),
    quantileBoundaries:
      boundaries === undefined || boundaries === null
        ? null
        : list(boundaries, `${where}: quantile_boundaries`).map((b, i) => {
            const n = optionalNumber(b, `${where}: quantile_boundaries[${i}]`);
            if (n === null) throw new UserInputError(`${where}: quantile_boundaries[${i}] is not a number`);
            return n;
          }),
    mean: optionalNumber(record.mean, `${where}: mean`),
    variance: optionalNumber(record.variance, `${where}: variance`),
    skewness: optionalNumber(record.skewness, `${where}: skewness`),
    kurtosis: optionalNumber(record.kurtosis, `${where}: kurtosis`),
  };
}

/** An explanations file: one NeuronSimulationResults (on the first non-empty line of the .jsonl). */
export function parseNeuronSimulationResults(value: unknown, where: string): PublishedNeuronExplanations {
  const results = expectDataclass(value, 'NeuronSimulationResults', where);
  const id = neuronId(results.neuron_id, `${where}: neuron_id`);
  const explanations = list(results.scored_explanations, `${where}: scored_explanations`).map((item, i) => {
    const at = `${where}: scored_explanations[${i}]`;
    const scored = expectDataclass(item, 'ScoredExplanation', at);
    if (typeof scored.explanation !== 'string') throw new UserInputError(`${at}.explanation: expected text`);
    const simulation = expectDataclass(
      scored.scored_simulation,
      'ScoredSimulation',
      `${at}.scored_simulation`,
    );
    const sequences = list(
      simulation.scored_sequence_simulations ?? [],
      `${at}.scored_simulation.scored_sequence_simulations`,
    );
    sequences.forEach((s, j) => {
      expectDataclass(
        s,
        'ScoredSequenceSimulation',
        `${at}.scored_simulation.scored_sequence_simulations[${j}]`,
      );
    });
    return {
      explanation: scored.explanation,
      evCorrelation: optionalNumber(simulation.ev_correlation_score, `${at}: ev_correlation_score`),
      rsquared: optionalNumber(simulation.rsquared_score, `${at}: rsquared_score`),
      absoluteDevExplained: optionalNumber(
        simulation.absolute_dev_explained_score,
        `${at}: absolute_dev_explained_score`,
      ),
      sequences: sequences.length,
    };
  });
  return { ...id, explanations };
}

/**
 * JSON as Python's json module writes it: standard JSON, except that NaN and ±Infinity appear as bare
 * words (their moments default to NaN). Those words outside strings are read as null.
 */
export function parsePythonJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    if (!/NaN|Infinity/.test(text))
      throw new UserInputError(`${where}: not JSON (${(error as Error).message})`);
  }
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    const word = /^(-?Infinity|NaN)/.exec(text.slice(i, i + 9))?.[0];
    if (word) {
      out += 'null';
      i += word.length - 1;
    } else out += c;
  }
  try {
    return JSON.parse(out);
  } catch (error) {
    throw new UserInputError(`${where}: not JSON (${(error as Error).message})`);
  }
}

/** The first non-empty line of a .jsonl file (OpenAI writes one NeuronSimulationResults per file). */
export function firstJsonLine(text: string, where: string): unknown {
  const line = text.split('\n').find((l) => l.trim() !== '');
  if (line === undefined) throw new UserInputError(`${where}: the file is empty`);
  return parsePythonJson(line, where);
}
