import { parseUnitId, UserInputError } from '@loupe/common';
import type { Sql } from '@loupe/common/db';
import type { DatasetSource } from './dataset-source.js';
import {
  firstJsonLine,
  type PublishedExplanation,
  type PublishedNeuronRecord,
  parseNeuronRecord,
  parseNeuronSimulationResults,
  parsePythonJson,
} from './openai-format.js';
import { completeUnits, savePublishedNeuron, type TokenIds } from './published-store.js';

export interface ImportOpenAiOptions {
  sql: Sql;
  source: DatasetSource;
  /** the model name units are filed under (`<model>/blocks.{layer}.mlp.hook_post/{neuron}`) */
  model: string;
  layers: [number, number];
  neurons: [number, number];
  /** neurons worked on at once; each has at most one request in flight */
  concurrency: number;
  tokenIds: TokenIds;
  onProgress?: (progress: { done: number; total: number; neuronsPerSecond: number }) => void;
  signal?: AbortSignal;
}

/** A file that was skipped, and why. */
export interface ImportProblem {
  unit: string;
  file: string;
  kind: 'missing' | 'malformed' | 'unreadable';
  message: string;
}

export interface ImportSummary {
  source: string;
  model: string;
  neurons: number;
  imported: number;
  alreadyImported: number;
  /** neurons with neither file readable: nothing stored */
  skipped: number;
  explanations: number;
  missingFiles: number;
  malformedFiles: number;
  unreadableFiles: number;
  /** the first MAX_LISTED problems, each naming its file */
  problems: ImportProblem[];
  seconds: number;
  neuronsPerSecond: number;
}

// A whole missing layer is 2 × 6,400 problems; the counts keep the total, the list stays readable.
const MAX_LISTED = 200;
const HOOK = (layer: number) => `blocks.${layer}.mlp.hook_post`;

/** `A-B` or `A` as an inclusive range within [0, limit). */
export function parseRange(spec: string | undefined, limit: number, flag: string): [number, number] {
  if (spec === undefined) return [0, limit - 1];
  const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(spec);
  const range: [number, number] = m ? [Number(m[1]), Number(m[2] ?? m[1])] : [Number.NaN, Number.NaN];
  if (!m || range[0] > range[1] || range[1] >= limit)
    throw new UserInputError(`${flag} "${spec}": expected A-B (or A) within 0-${limit - 1}`);
  return range;
}

/**
 * Imports OpenAI's published neurons (collated activations and scored explanations) into the explainer's
 * store. Neurons already imported whole are skipped, each neuron is written in one transaction, so a
 * run that was killed is finished by running it again. Missing or malformed files are counted, named
 * and skipped.
 */
export async function importOpenAiNeurons(options: ImportOpenAiOptions): Promise<ImportSummary> {
  const started = performance.now();
  parseUnitId(`${options.model}/${HOOK(options.layers[0])}/0`); // a model name no unit id can hold fails here
  const todo: { layer: number; neuron: number; unit: string }[] = [];
  for (let layer = options.layers[0]; layer <= options.layers[1]; layer++)
    for (let neuron = options.neurons[0]; neuron <= options.neurons[1]; neuron++)
      todo.push({ layer, neuron, unit: `${options.model}/${HOOK(layer)}/${neuron}` });
  const done = await completeUnits(
    options.sql,
    todo.map((t) => t.unit),
  );
  const work = todo.filter((t) => !done.has(t.unit));
  const summary: ImportSummary = {
    source: options.source.location,
    model: options.model,
    neurons: todo.length,
    imported: 0,
    alreadyImported: done.size,
    skipped: 0,
    explanations: 0,
    missingFiles: 0,
    malformedFiles: 0,
    unreadableFiles: 0,
    problems: [],
    seconds: 0,
    neuronsPerSecond: 0,
  };
  const problem = (p: ImportProblem) => {
    if (p.kind === 'missing') summary.missingFiles++;
    else if (p.kind === 'malformed') summary.malformedFiles++;
    else summary.unreadableFiles++;
    if (summary.problems.length < MAX_LISTED) summary.problems.push(p);
  };

  /** Reads and parses one file; null (with the problem noted) when it cannot be used. */
  const load = async <T>(
    unit: string,
    file: string,
    parse: (text: string) => T,
    expect: { layer: number; neuron: number },
  ): Promise<T | null> => {
    const fetched = await options.source.read(file);
    if (!fetched.ok) {
      problem({ unit, file, kind: fetched.missing ? 'missing' : 'unreadable', message: fetched.why });
      return null;
    }
    try {
      const parsed = parse(fetched.text) as T & { layer: number; neuron: number };
      if (parsed.layer !== expect.layer || parsed.neuron !== expect.neuron)
        throw new UserInputError(
          `${file}: holds neuron ${parsed.layer}/${parsed.neuron}, expected ${expect.layer}/${expect.neuron}`,
        );
      return parsed;
    } catch (error) {
      if (!(error instanceof UserInputError)) throw error;
      problem({ unit, file, kind: 'malformed', message: error.message });
      return null;
    }
  };

  let next = 0;
  let finished = 0;
  const report = () => {
    const seconds = (performance.now() - started) / 1000;
    options.onProgress?.({
      done: done.size + finished,
      total: todo.length,
      neuronsPerSecond: seconds > 0 ? finished / seconds : 0,
    });
  };
  report();
  const worker = async () => {
    while (next < work.length && !options.signal?.aborted) {
      const { layer, neuron, unit } = work[next++];
      const recordsFile = `collated-activations/${layer}/${neuron}.json`;
      const explanationsFile = `explanations/${layer}/${neuron}.jsonl`;
      const record = await load<PublishedNeuronRecord>(
        unit,
        recordsFile,
        (text) => parseNeuronRecord(parsePythonJson(text, recordsFile), recordsFile),
        { layer, neuron },
      );
      const explained = await load(
        unit,
        explanationsFile,
        (text) => parseNeuronSimulationResults(firstJsonLine(text, explanationsFile), explanationsFile),
        { layer, neuron },
      );
      const explanations: PublishedExplanation[] | null = explained?.explanations ?? null;
      if (record || explanations) {
        await savePublishedNeuron(
          options.sql,
          {
            unit,
            model: options.model,
            source: options.source.location,
            layer,
            neuron,
            record,
            explanations,
          },
          options.tokenIds,
        );
        summary.imported++;
        summary.explanations += explanations?.length ?? 0;
      } else summary.skipped++;
      finished++;
      report();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  summary.seconds = (performance.now() - started) / 1000;
  summary.neuronsPerSecond = summary.seconds > 0 ? finished / summary.seconds : 0;
  report();
  return summary;
}
