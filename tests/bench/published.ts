import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, runMigrations, spawnEmbeddedPostgres } from '@loupe/common/db';
import {
  datasetSource,
  EXPLAINER_MIGRATIONS_DIR,
  EXPLAINER_SCHEMA,
  importOpenAiNeurons,
  listExplanations,
  listPublishedNeurons,
  publishedScoresByLayer,
  searchExplanations,
} from '@loupe/explainer';
import { Gpt2Tokenizer } from '@loupe/model';
import { ensureFixture, FIXTURES } from '../fixtures/index.js';
import { startTestDatabase } from '../support/database.js';
import { generateDataset, serveDataset, writeDataset } from '../support/openai-dataset.js';
import { median } from './matmul-rate.js';
import { fmt, printTable } from './measure.js';

// Realistic sizes for OpenAI's GPT-2 XL files (assumed, stated in the README): 64-token records, 20 top,
// 20 random, 5 quantiles of 10; one explanation scored on 10 sequences (5 top, 5 random).
const NEURONS = Number(process.env.BENCH_PUBLISHED_NEURONS ?? 1000);
const FULL = 307_200;
const ROWS_LAYERS = 48;
const ROWS_PER_LAYER = 6400;

const du = (dir: string) => Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);
const mb = (bytes: number) => `${fmt(bytes / 1e6, 1)} MB`;

async function timed<T>(runs: number, work: () => Promise<T>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await work();
    times.push(performance.now() - start);
  }
  return median(times);
}

/**
 * `loupe import openai-neurons` from a local HTTP mirror into the embedded Postgres: neurons/s, and the
 * database's growth per 1,000 neurons; then browse and search latency over 307,200 published neurons
 * and their explanations (generated rows, records left out: the queries never read them).
 */
export async function publishedBench(): Promise<void> {
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-bench-published-'));
  const mirror = path.join(scratch, 'mirror');
  const pgDir = path.join(scratch, 'pg');
  const dataset = generateDataset({
    layers: 1,
    neurons: NEURONS,
    records: 20,
    length: 64,
    quantiles: 5,
    perQuantile: 10,
  });
  await writeDataset(mirror, dataset, 10);
  const mirrorBytes = du(mirror);
  const server = await serveDataset(mirror);
  // a real server when LOUPE_TEST_DATABASE_URL names one (a database of its own there), else embedded
  const onServer = Boolean(process.env.LOUPE_TEST_DATABASE_URL);
  const db = onServer ? await startTestDatabase() : await spawnEmbeddedPostgres({ dataDir: pgDir });
  const sql = connect(db.url, { schema: EXPLAINER_SCHEMA });
  const dataDirBytes = () => (onServer ? 0 : du(pgDir));
  const tokenizer = await Gpt2Tokenizer.load(await ensureFixture(FIXTURES.tiny));
  const strings = tokenizer.tokenStrings(Array.from({ length: tokenizer.vocabSize }, (_, i) => i));
  const ids = new Map(strings.map((s, i) => [s, i]));
  try {
    await runMigrations(sql, { schema: EXPLAINER_SCHEMA, dir: EXPLAINER_MIGRATIONS_DIR });
    await sql`CHECKPOINT`;
    const before = {
      db: Number((await sql`SELECT pg_database_size(current_database()) AS n`)[0].n),
      disk: dataDirBytes(),
    };
    const rows: { measure: string; value: string; reference: string; ratio: string }[] = [];
    for (const concurrency of [16]) {
      const summary = await importOpenAiNeurons({
        sql,
        source: datasetSource(server.url),
        model: 'gpt2-xl',
        layers: [0, 0],
        neurons: [0, NEURONS - 1],
        concurrency,
        tokenIds: (t) => (t.includes('\ufffd') ? null : (ids.get(t) ?? null)),
      });
      rows.push({
        measure: `import ${fmt(NEURONS)} neurons over HTTP, concurrency ${concurrency}`,
        value: `${fmt(summary.neuronsPerSecond, 1)} neurons/s`,
        reference: `307,200 neurons in ${fmt(FULL / summary.neuronsPerSecond / 3600, 1)} h`,
        ratio: `${mb(mirrorBytes / (NEURONS / 1000))} of JSON per 1,000`,
      });
    }
    await sql`CHECKPOINT`;
    const size = async (table: string) =>
      Number((await sql`SELECT pg_total_relation_size(${table}::regclass) AS n`)[0].n);
    const after = {
      db: Number((await sql`SELECT pg_database_size(current_database()) AS n`)[0].n),
      disk: dataDirBytes(),
    };
    const per1000 = (bytes: number) => (bytes * 1000) / NEURONS;
    rows.push(
      {
        measure: 'database growth per 1,000 neurons (pg_database_size)',
        value: mb(per1000(after.db - before.db)),
        reference: `${fmt((per1000(after.db - before.db) * FULL) / 1000 / 1e9, 1)} GB for 307,200`,
        ratio: `${fmt((after.db - before.db) / mirrorBytes, 2)}× the JSON`,
      },
      {
        measure: '  published_neurons (records, moments; with TOAST and indexes)',
        value: mb(per1000(await size('published_neurons'))),
        reference: '',
        ratio: '',
      },
      {
        measure: '  explanations',
        value: mb(per1000(await size('explanations'))),
        reference: '',
        ratio: '',
      },
      {
        measure: 'data directory growth per 1,000 neurons (du, WAL included)',
        value: mb(per1000(after.disk - before.disk)),
        reference: `${fmt((per1000(after.disk - before.disk) * FULL) / 1000 / 1e9, 1)} GB for 307,200`,
        ratio: '',
      },
    );
    if (onServer) rows.pop(); // the server's data directory is not ours to measure
    const where = onServer ? 'PostgreSQL server' : 'embedded Postgres';
    printTable(`Published neurons: import (${os.cpus().length} CPUs, ${where})`, rows);

    // 307,200 neurons with explanations: generated in SQL (the browse and search queries read only the
    // score columns and the explanation text, not the records)
    const start = performance.now();
    await sql`TRUNCATE published_neurons`;
    await sql`DELETE FROM explanations`;
    await sql`
      INSERT INTO published_neurons (unit, model, source, publisher, layer, neuron, best_score, best_explanation, explanations)
      SELECT 'gpt2-xl/blocks.' || l || '.mlp.hook_post/' || n, 'gpt2-xl', 'bench', 'published by OpenAI', l, n,
        s, 'words about ' || (ARRAY['rivers','cities','numbers','code','names','dates','food','music'])[1 + (l * 7 + n) % 8]
          || ' and token ' || n, 1
      FROM generate_series(0, ${ROWS_LAYERS - 1}) l, generate_series(0, ${ROWS_PER_LAYER - 1}) n,
        LATERAL (SELECT CASE WHEN (l + n) % 97 = 0 THEN NULL
          ELSE LEAST(1, GREATEST(-1, 0.9 - l * 0.012 + 0.25 * sin(n * 12.9898 + l * 78.233))) END AS s) x`;
    await sql`
      INSERT INTO explanations (id, unit, explanation, method, score, explainer_model, simulator_model, prompt_version, provenance)
      SELECT gen_random_uuid(), unit, best_explanation, 'simulation', best_score, 'gpt-4 (published by OpenAI)',
        'gpt-4 (published by OpenAI)', 'openai-automated-interpretability', '{}'::jsonb
      FROM published_neurons`;
    await sql`ANALYZE`;
    const generated = (performance.now() - start) / 1000;
    const page = await timed(9, () =>
      listPublishedNeurons(sql, { model: 'gpt2-xl', minScore: 0.8, limit: 50 }),
    );
    const deep = await timed(9, () =>
      listPublishedNeurons(sql, { model: 'gpt2-xl', offset: 100_000, limit: 50 }),
    );
    const layer = await timed(9, () => listPublishedNeurons(sql, { model: 'gpt2-xl', layer: 30, limit: 50 }));
    const picture = await timed(5, () => publishedScoresByLayer(sql, { model: 'gpt2-xl' }));
    const search = await timed(9, () => searchExplanations(sql, { query: 'rivers token', limit: 20 }));
    const unitPage = await timed(9, () =>
      listExplanations(sql, { units: ['gpt2-xl/blocks.20.mlp.hook_post/1234'] }),
    );
    const { total } = await listPublishedNeurons(sql, { model: 'gpt2-xl', minScore: 0.8, limit: 1 });
    const ms = (x: number) => `${fmt(x, 1)} ms`;
    printTable(
      `Published neurons: browse and search over ${fmt(ROWS_LAYERS * ROWS_PER_LAYER)} neurons (generated in ${fmt(generated)} s)`,
      [
        {
          measure: `list score ≥ 0.8, first 50 (${fmt(total)} match)`,
          value: ms(page),
          reference: 'median of 9',
          ratio: '',
        },
        { measure: 'list by score, offset 100,000', value: ms(deep), reference: 'median of 9', ratio: '' },
        {
          measure: 'list one layer by score, first 50',
          value: ms(layer),
          reference: 'median of 9',
          ratio: '',
        },
        {
          measure: 'scores by layer (48 histograms)',
          value: ms(picture),
          reference: 'median of 5',
          ratio: '',
        },
        { measure: 'full-text search, 20 hits', value: ms(search), reference: 'median of 9', ratio: '' },
        {
          measure: "one unit's explanations (unit page)",
          value: ms(unitPage),
          reference: 'median of 9',
          ratio: '',
        },
      ],
    );
  } finally {
    await sql.end();
    await db.stop();
    await server.close();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}
