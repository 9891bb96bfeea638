import { readFile } from 'node:fs/promises';
import { loadConfig, UserInputError } from '@loupe/common';
import {
  classificationScore,
  explainUnit,
  llmOptionsFromConfig,
  parseSimulatorMethod,
  parseUnitRecords,
  scoreExplanation,
  selectModels,
  type UnitRecords,
  UsageMeter,
} from '@loupe/explainer';
import { printJson } from '../run-command.js';

interface LlmFlags {
  records: string;
  simulator?: string;
  llmBaseUrl?: string;
  llmModel?: string;
  seed: string;
  bootstrap: string;
}

const METHODS = ['simulation', 'detection', 'fuzzing'] as const;

/** `loupe score`: one explanation against given records; every record is scored (no split). */
export async function score(options: LlmFlags & { explanation: string; method: string }): Promise<void> {
  const method = METHODS.find((m) => m === options.method);
  if (!method)
    throw new UserInputError(`--method "${options.method}": expected one of ${METHODS.join(', ')}`);
  if (options.explanation.trim() === '') throw new UserInputError('--explanation must not be empty');
  const { records, models, seed, bootstrapSamples } = await prepare(options);
  const meter = new UsageMeter();
  if (method === 'simulation') {
    await printJson(
      await scoreExplanation(options.explanation, records, models.simulator, {
        seed,
        bootstrapSamples,
        meter,
      }),
    );
  } else {
    await printJson(
      await classificationScore(method, options.explanation, records, { judge: models.judge, seed, meter }),
    );
  }
}

/** `loupe explain`: explain on half the top records, score the best candidate on the held-out half. */
export async function explain(options: LlmFlags & { candidates: string }): Promise<void> {
  const candidates = wholeNumber(options.candidates, '--candidates', 1);
  const { records, models, seed, bootstrapSamples } = await prepare(options);
  await printJson(
    await explainUnit(records, {
      explainer: models.explainer,
      simulator: models.simulator,
      candidates,
      seed,
      bootstrapSamples,
      meter: new UsageMeter(),
    }),
  );
}

async function prepare(options: LlmFlags) {
  const config = loadConfig();
  const llm = llmOptionsFromConfig(config, {
    ...(options.llmBaseUrl ? { baseUrl: options.llmBaseUrl.replace(/\/+$/, '') } : {}),
    ...(options.llmModel ? { model: options.llmModel } : {}),
  });
  const method = options.simulator === undefined ? undefined : parseSimulatorMethod(options.simulator);
  return {
    records: await readRecords(options.records),
    models: selectModels(llm, method),
    seed: wholeNumber(options.seed, '--seed', 0),
    bootstrapSamples: wholeNumber(options.bootstrap, '--bootstrap', 0),
  };
}

async function readRecords(file: string): Promise<UnitRecords> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UserInputError(`cannot read --records ${file}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UserInputError(`--records ${file} is not JSON: ${(error as Error).message}`);
  }
  return parseUnitRecords(value, file);
}

function wholeNumber(raw: string, flag: string, min: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min)
    throw new UserInputError(`${flag} "${raw}": expected a whole number ≥ ${min}`);
  return value;
}
