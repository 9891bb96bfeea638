import { loadConfig, modelsDir, UserInputError } from '@loupe/common';
import {
  datasetSource,
  EXPLAINER_MIGRATIONS_DIR,
  EXPLAINER_SCHEMA,
  importOpenAiNeurons,
  listPublishedNeurons,
  OPENAI_NEURONS_URL,
  parseRange,
  publishedScoresByLayer,
  type TokenIds,
} from '@loupe/explainer';
import { Gpt2Tokenizer, readManifest, resolveModelDir } from '@loupe/model';
import { progressBar } from '../progress.js';
import { printJson } from '../run-command.js';

interface ImportOptions {
  source?: string;
  model: string;
  layers?: string;
  neurons?: string;
  concurrency: string;
}

/**
 * `loupe import openai-neurons`: OpenAI's GPT-2 XL neuron records and explanations into the explainer's
 * store. Ctrl-C (or a kill) stops it; running it again finishes the neurons not yet imported.
 */
export async function importOpenAiNeuronsCommand(options: ImportOptions): Promise<void> {
  const { openDatabase } = await import('@loupe/common/db');
  const config = loadConfig();
  const concurrency = Number(options.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)
    throw new UserInputError(`--concurrency "${options.concurrency}": expected a whole number from 1 to 256`);
  const dir = resolveModelDir(modelsDir(config), options.model);
  const manifest = await readManifest(dir);
  const layers = parseRange(options.layers, manifest.dims.nLayer, '--layers');
  const neurons = parseRange(options.neurons, manifest.dims.dMlp, '--neurons');
  const tokenIds = await exactTokenIds(dir, manifest.tokenizer);
  const db = await openDatabase(config, {
    schema: EXPLAINER_SCHEMA,
    migrationsDir: EXPLAINER_MIGRATIONS_DIR,
    applicationName: 'loupe-import',
  });
  const stop = new AbortController();
  const interrupt = () => stop.abort();
  process.once('SIGINT', interrupt);
  const bar = progressBar('importing');
  try {
    const summary = await importOpenAiNeurons({
      sql: db.sql,
      source: datasetSource(options.source ?? OPENAI_NEURONS_URL),
      model: manifest.name,
      layers,
      neurons,
      concurrency,
      tokenIds,
      signal: stop.signal,
      onProgress: ({ done, total, neuronsPerSecond }) =>
        bar.update(done, total, `${neuronsPerSecond.toFixed(1)} neurons/s`),
    });
    bar.stop();
    const files = summary.missingFiles + summary.malformedFiles + summary.unreadableFiles;
    process.stderr.write(
      `imported ${summary.imported} neurons (${summary.explanations} explanations), ${summary.alreadyImported} already there, ` +
        `${files} files skipped, ${summary.neuronsPerSecond.toFixed(1)} neurons/s\n`,
    );
    for (const p of summary.problems) process.stderr.write(`  skipped ${p.kind} ${p.file}: ${p.message}\n`);
    await printJson(summary);
  } finally {
    bar.stop();
    process.off('SIGINT', interrupt);
    await db.close();
  }
}

/**
 * OpenAI stored tokens as decoded strings; the model's token whose display string is exactly the same
 * gets its id. Strings two ids share stay text, and so does any string with U+FFFD: their decoding
 * turned every partial-UTF-8 token into it, so it cannot tell those from the one token that is "�".
 */
async function exactTokenIds(dir: string, files: { vocab: string; merges: string }): Promise<TokenIds> {
  const tokenizer = await Gpt2Tokenizer.load(dir, files);
  const strings = tokenizer.tokenStrings(Array.from({ length: tokenizer.vocabSize }, (_, i) => i));
  const ids = new Map<string, number | null>();
  for (const [id, s] of strings.entries()) ids.set(s, ids.has(s) ? null : id);
  return (token) => (token.includes('\ufffd') ? null : (ids.get(token) ?? null));
}

async function withExplainerDatabase<T>(
  work: (sql: import('@loupe/common/db').Sql) => Promise<T>,
): Promise<T> {
  const { openDatabase } = await import('@loupe/common/db');
  const db = await openDatabase(loadConfig(), {
    schema: EXPLAINER_SCHEMA,
    migrationsDir: EXPLAINER_MIGRATIONS_DIR,
    applicationName: 'loupe-published',
  });
  try {
    return await work(db.sql);
  } finally {
    await db.close();
  }
}

function numberFlag(raw: string | undefined, flag: string, whole: boolean): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || (whole && (!Number.isInteger(value) || value < 0)))
    throw new UserInputError(`${flag} "${raw}": expected ${whole ? 'a whole number ≥ 0' : 'a number'}`);
  return value;
}

/** `loupe published list`: imported neurons by best published score, best first. */
export async function publishedList(options: {
  model: string;
  layer?: string;
  minScore?: string;
  offset: string;
  limit: string;
}): Promise<void> {
  const result = await withExplainerDatabase((sql) =>
    listPublishedNeurons(sql, {
      model: options.model,
      layer: numberFlag(options.layer, '--layer', true),
      minScore: numberFlag(options.minScore, '--min-score', false),
      offset: numberFlag(options.offset, '--offset', true),
      limit: numberFlag(options.limit, '--limit', true),
    }),
  );
  await printJson(result);
}

/** `loupe published layers`: the distribution of best published scores in each layer. */
export async function publishedLayers(options: {
  model: string;
  bins: string;
  threshold: string;
}): Promise<void> {
  const result = await withExplainerDatabase((sql) =>
    publishedScoresByLayer(sql, {
      model: options.model,
      bins: numberFlag(options.bins, '--bins', true),
      threshold: numberFlag(options.threshold, '--threshold', false),
    }),
  );
  await printJson(result);
}
