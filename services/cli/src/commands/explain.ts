import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { loadConfig, UserInputError } from '@loupe/common';
import type { Sql } from '@loupe/common/db';
import {
  classificationScore,
  configuredSimulator,
  createJob,
  EXPLAINER_MIGRATIONS_DIR,
  EXPLAINER_SCHEMA,
  embeddingsFromConfig,
  explainUnit,
  FileRecordSource,
  GrpcRecordSource,
  getJob,
  JOB_METHODS,
  jobResults,
  llmOptionsFromConfig,
  modelsForJob,
  PublishedRecordSource,
  parseRecordSplit,
  parseSimulatorMethod,
  parseUnitRecords,
  parseUnitSpec,
  pricesFromConfig,
  resolveJobLlm,
  runJob,
  scoreExplanation,
  selectModels,
  type UnitRecords,
  UsageMeter,
} from '@loupe/explainer';
import { progressBar } from '../progress.js';
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

/**
 * `loupe explain`: explain on the train split, choose among candidates on the selection split, score the
 * best on the held-out split (OpenAI's four-way split by default).
 */
export async function explain(
  options: LlmFlags & { candidates: string; recordSplit?: string },
): Promise<void> {
  const candidates = wholeNumber(options.candidates, '--candidates', 1);
  const split = options.recordSplit === undefined ? undefined : parseRecordSplit(options.recordSplit);
  const { records, models, seed, bootstrapSamples } = await prepare(options);
  await printJson(
    await explainUnit(records, {
      explainer: models.explainer,
      simulator: models.simulator,
      candidates,
      split,
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
  const method =
    options.simulator === undefined
      ? llm
        ? configuredSimulator(config)
        : undefined
      : parseSimulatorMethod(options.simulator);
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

interface JobsScoreOptions {
  units?: string;
  job?: string;
  method: string;
  simulator?: string;
  llmBaseUrl?: string;
  llmModel?: string;
  budgetTokens: string;
  concurrency: string;
  maxAttempts: string;
  seed: string;
  recordsDir?: string;
  out?: string;
}

/**
 * `loupe jobs score`: a durable batch job in this process, with a progress bar. Interrupting it and
 * running `--job <id>` again resumes where it stopped; no unit is scored twice.
 */
export async function jobsScore(options: JobsScoreOptions): Promise<void> {
  const { openDatabase } = await import('@loupe/common/db');
  const config = loadConfig();
  if (!options.units === !options.job)
    throw new UserInputError('give either --units <spec> or --job <id> to resume');
  const method = JOB_METHODS.find((m) => m === options.method);
  if (!method)
    throw new UserInputError(`--method "${options.method}": expected one of ${JOB_METHODS.join(', ')}`);
  const db = await openDatabase(config, {
    schema: EXPLAINER_SCHEMA,
    migrationsDir: EXPLAINER_MIGRATIONS_DIR,
    applicationName: 'loupe-jobs',
  });
  const embeddings = embeddingsFromConfig(config);
  const grpcSource = new GrpcRecordSource({ capture: config.captureAddress, sae: config.saeAddress });
  const stop = new AbortController();
  const interrupt = () => stop.abort();
  process.once('SIGINT', interrupt);
  const bar = progressBar('scoring');
  try {
    const jobId =
      options.job ??
      (await createJob(db.sql, {
        units: parseUnitSpec(options.units as string),
        method,
        llm: resolveJobLlm(config, {
          baseUrl: options.llmBaseUrl,
          model: options.llmModel,
          simulator: options.simulator,
        }),
        budgetTokens: wholeNumber(options.budgetTokens, '--budget-tokens', 0),
        concurrency: wholeNumber(options.concurrency, '--concurrency', 1),
        seed: wholeNumber(options.seed, '--seed', 0),
        maxAttempts: wholeNumber(options.maxAttempts, '--max-attempts', 1),
        prices: pricesFromConfig(config),
      }));
    const before = await getJob(db.sql, jobId);
    process.stderr.write(
      `${options.job ? 'resuming' : 'starting'} scoring job ${jobId}: ${before.unitsTotal} units, ${before.method}, ` +
        `${before.llm.baseUrl ? `${before.llm.model} at ${before.llm.baseUrl}` : 'baseline-statistical'}\n`,
    );
    const show = async () => {
      const job = await getJob(db.sql, jobId);
      bar.update(job.unitsDone + job.unitsFailed, job.unitsTotal, usageLine(job));
    };
    const ticker = setInterval(() => show().catch(() => {}), 250);
    let job: Awaited<ReturnType<typeof getJob>>;
    try {
      job = await runJob(
        {
          sql: db.sql,
          records: options.recordsDir
            ? new FileRecordSource(options.recordsDir)
            : new PublishedRecordSource(async () => db.sql, grpcSource),
          models: (llm) => modelsForJob(config, llm),
          embed: embeddings
            ? (text) =>
                embeddings.embed([text]).then(
                  (vectors) => vectors[0],
                  () => undefined, // an explanation is kept even when it cannot be embedded
                )
            : undefined,
        },
        jobId,
        stop.signal,
      );
    } finally {
      clearInterval(ticker);
    }
    await show();
    bar.stop();
    process.stderr.write(
      `scoring job ${jobId} ${job.status}: ${job.unitsDone} done, ${job.unitsFailed} failed, ${usageLine(job)}\n`,
    );
    if (options.out) await writeResults(db.sql, jobId, options.out);
    await printJson(job);
  } finally {
    bar.stop();
    process.off('SIGINT', interrupt);
    grpcSource.close();
    await db.close();
  }
}

/** Tokens so far and, when the job was priced (LOUPE_LLM_PRICE_*), what they cost at its prices. */
function usageLine(job: Awaited<ReturnType<typeof getJob>>): string {
  const tokens = `${job.promptTokens + job.completionTokens} tokens`;
  const priced = job.prices.promptUsdPerMillion > 0 || job.prices.completionUsdPerMillion > 0;
  return priced ? `${tokens}, $${job.costUsd.toFixed(4)}` : `${tokens}, unpriced`;
}

/** `loupe jobs export <id>`: one JSON line per unit, to a file or stdout. */
export async function jobsExport(id: string, options: { out?: string }): Promise<void> {
  const { openDatabase } = await import('@loupe/common/db');
  const db = await openDatabase(loadConfig(), {
    schema: EXPLAINER_SCHEMA,
    migrationsDir: EXPLAINER_MIGRATIONS_DIR,
    applicationName: 'loupe-jobs',
  });
  try {
    await writeResults(db.sql, id, options.out);
  } finally {
    await db.close();
  }
}

async function writeResults(sql: Sql, jobId: string, out: string | undefined): Promise<void> {
  const stream = out ? createWriteStream(out) : process.stdout;
  for await (const line of jobResults(sql, jobId))
    if (!stream.write(`${JSON.stringify(line)}\n`)) await once(stream, 'drain');
  if (out)
    await new Promise<void>((resolve, reject) =>
      (stream as WriteStream).end((e?: Error) => (e ? reject(e) : resolve())),
    );
}
