import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Rng } from '@loupe/common';
import { runCli } from './process.js';

// A synthetic dataset in the layout of OpenAI's public neuron-explainer data (README of
// openai/automated-interpretability; dataclasses of neuron_explainer's activations.py and
// explanations.py), written the two ways their files exist: with `dataclass_name` on every object, and
// without (older files, recognised by field names), Python's bare NaN included.

/** Words of the real GPT-2 vocabulary (the tiny fixture's), each one token there. */
const WORDS = [
  ' the',
  ' river',
  ' bank',
  ' of',
  ' water',
  ' and',
  ' a',
  ' boat',
  'The',
  ' city',
  ' flows',
  ' in',
];
/** Published token strings no GPT-2 token reads exactly: partial UTF-8 decoded as U+FFFD, and an odd string. */
export const UNMATCHED_TOKENS = ['\ufffd', ' zzqxj-not-a-token'];

export interface DatasetNeuron {
  layer: number;
  neuron: number;
  /** true: objects carry dataclass_name; false: the older form without it */
  named: boolean;
  top: { tokens: string[]; activations: number[] }[];
  random: { tokens: string[]; activations: number[] }[];
  quantiles: { tokens: string[]; activations: number[] }[][];
  quantileBoundaries: number[];
  moments: { mean: number; variance: number; skewness: number; kurtosis: number };
  explanations: { explanation: string; score: number | null }[];
}

export interface DatasetOptions {
  layers: number;
  neurons: number;
  /** most_positive_activation_records and random_sample per neuron */
  records?: number;
  /** tokens per record (OpenAI's are 64) */
  length?: number;
  quantiles?: number;
  perQuantile?: number;
  seed?: number;
}

function record(rng: Rng, length: number, peak: number) {
  const tokens: string[] = [];
  const activations: number[] = [];
  for (let i = 0; i < length; i++) {
    const u = rng.nextUniform();
    tokens.push(u < 0.03 ? UNMATCHED_TOKENS[i % 2] : WORDS[rng.nextUint32() % WORDS.length]);
    // the neuron fires on " river", a little on the rest
    activations.push(tokens[i] === ' river' ? peak * (0.5 + rng.nextUniform() / 2) : rng.nextNormal() * 0.05);
  }
  return { tokens, activations };
}

/** Generates every neuron's content (deterministic per seed); write it with writeDataset. */
export function generateDataset(options: DatasetOptions): DatasetNeuron[] {
  const { records = 8, length = 16, quantiles = 3, perQuantile = 2, seed = 1 } = options;
  const out: DatasetNeuron[] = [];
  for (let layer = 0; layer < options.layers; layer++)
    for (let neuron = 0; neuron < options.neurons; neuron++) {
      const rng = Rng.derive(seed, `${layer}/${neuron}`);
      const make = (n: number, peak: number) => Array.from({ length: n }, () => record(rng, length, peak));
      out.push({
        layer,
        neuron,
        named: (layer + neuron) % 2 === 0,
        top: make(records, 5),
        random: make(records, 1),
        quantiles: Array.from({ length: quantiles }, (_, q) => make(perQuantile, q + 1)),
        quantileBoundaries: Array.from({ length: quantiles + 1 }, (_, q) => q * 0.5),
        moments: {
          mean: rng.nextNormal(),
          variance: rng.nextUniform() + 0.1,
          skewness: rng.nextNormal(),
          kurtosis: 3,
        },
        explanations: [
          {
            explanation: `the word "river" (${layer}/${neuron})`,
            score: Math.round(rng.nextUniform() * 1e6) / 1e6,
          },
          {
            explanation: `bodies of water near layer ${layer} neuron ${neuron}`,
            score: rng.nextUniform() - 0.5,
          },
        ],
      });
    }
  return out;
}

const named = (on: boolean, name: string, fields: Record<string, unknown>) =>
  on ? { dataclass_name: name, ...fields } : fields;

export function neuronRecordJson(n: DatasetNeuron): string {
  const rec = (r: { tokens: string[]; activations: number[] }) => named(n.named, 'ActivationRecord', r);
  const text = JSON.stringify(
    named(n.named, 'NeuronRecord', {
      neuron_id: named(n.named, 'NeuronId', { layer_index: n.layer, neuron_index: n.neuron }),
      random_sample: n.random.map(rec),
      random_sample_by_quantile: n.quantiles.map((q) => q.map(rec)),
      quantile_boundaries: n.quantileBoundaries,
      ...n.moments,
      most_positive_activation_records: n.top.map(rec),
    }),
  );
  // Python's json writes NaN bare; the old-form files say so for a moment they did not compute.
  return Number.isNaN(n.moments.skewness) ? text.replace('"skewness":null', '"skewness":NaN') : text;
}

/** `sequences`: scored sequences per explanation (the paper scored on 5 top and 5 random windows). */
export function simulationResultsJson(n: DatasetNeuron, sequences = 2): string {
  const scored = [
    ...n.top.slice(0, Math.ceil(sequences / 2)),
    ...n.random.slice(0, Math.floor(sequences / 2)),
  ].map((r) =>
    named(n.named, 'ScoredSequenceSimulation', {
      simulation: named(n.named, 'SequenceSimulation', {
        tokens: r.tokens,
        expected_activations: r.activations.map((a) => Math.max(0, Math.min(10, a * 2))),
        activation_scale: 'simulated_normalized_activations',
        distribution_values: r.tokens.map(() => [0, 10]),
        distribution_probabilities: r.tokens.map(() => [0.5, 0.5]),
        uncalibrated_simulation: null,
      }),
      true_activations: r.activations,
      ev_correlation_score: 0.5,
      rsquared_score: 0.2,
      absolute_dev_explained_score: 0.1,
    }),
  );
  return `${JSON.stringify(
    named(n.named, 'NeuronSimulationResults', {
      neuron_id: named(n.named, 'NeuronId', { layer_index: n.layer, neuron_index: n.neuron }),
      scored_explanations: n.explanations.map((e) =>
        named(n.named, 'ScoredExplanation', {
          explanation: e.explanation,
          scored_simulation: named(n.named, 'ScoredSimulation', {
            scored_sequence_simulations: scored,
            ev_correlation_score: e.score,
            rsquared_score: e.score === null ? null : e.score * e.score,
            absolute_dev_explained_score: null,
          }),
        }),
      ),
    }),
  )}\n`;
}

export const recordsPath = (layer: number, neuron: number) => `collated-activations/${layer}/${neuron}.json`;
export const explanationsPath = (layer: number, neuron: number) => `explanations/${layer}/${neuron}.jsonl`;

/** Writes the dataset under `dir` in OpenAI's layout. */
export async function writeDataset(dir: string, neurons: DatasetNeuron[], sequences = 2): Promise<void> {
  for (const n of neurons) {
    await fs.mkdir(path.join(dir, 'collated-activations', String(n.layer)), { recursive: true });
    await fs.mkdir(path.join(dir, 'explanations', String(n.layer)), { recursive: true });
    await fs.writeFile(path.join(dir, recordsPath(n.layer, n.neuron)), neuronRecordJson(n));
    await fs.writeFile(
      path.join(dir, explanationsPath(n.layer, n.neuron)),
      simulationResultsJson(n, sequences),
    );
  }
}

/**
 * Writes the dataset under `dir` and imports it with `loupe import openai-neurons` as a user runs it
 * (the layers and neurons it spans), into the stack that `env` configures; throws with the CLI's stderr.
 */
export async function importDataset(
  dir: string,
  neurons: DatasetNeuron[],
  env: Record<string, string>,
  model = 'tiny',
): Promise<void> {
  await writeDataset(dir, neurons);
  const span = (values: number[]) => `${Math.min(...values)}-${Math.max(...values)}`;
  const imported = await runCli(
    [
      'import',
      'openai-neurons',
      '--source',
      dir,
      '--model',
      model,
      '--layers',
      span(neurons.map((n) => n.layer)),
      '--neurons',
      span(neurons.map((n) => n.neuron)),
      '--json',
    ],
    env,
  );
  if (imported.code !== 0) throw new Error(`import failed:\n${imported.stderr}`);
}

export interface DatasetServer {
  url: string;
  /** paths requested, in order */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Serves a folder over HTTP the way a blob store does (404 for a missing blob), optionally slowly and
 * with a 503 on the first request for some paths, so retries and kills mid-run can be tested.
 */
export async function serveDataset(
  dir: string,
  options: { delayMs?: number; failFirst?: (p: string) => boolean } = {},
): Promise<DatasetServer> {
  const requests: string[] = [];
  const failed = new Set<string>();
  const server = http.createServer((req, res) => {
    const relative = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
    requests.push(relative);
    setTimeout(() => {
      if (options.failFirst?.(relative) && !failed.has(relative)) {
        failed.add(relative);
        res.writeHead(503).end('busy');
        return;
      }
      const file = path.join(dir, relative);
      if (!file.startsWith(dir) || relative.includes('..')) return void res.writeHead(400).end();
      fs.stat(file).then(
        (stat) => {
          res.writeHead(200, { 'content-length': stat.size, 'content-type': 'application/octet-stream' });
          createReadStream(file).pipe(res);
        },
        () => res.writeHead(404).end('BlobNotFound'),
      );
    }, options.delayMs ?? 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
