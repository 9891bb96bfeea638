import fs from 'node:fs/promises';
import path from 'node:path';
import { type Database, openDatabase } from '@loupe/common/db';
import { type ExplainerApi, explainerServiceClient } from '@loupe/common/grpc';
import { EXPLAINER_MIGRATIONS_DIR, EXPLAINER_SCHEMA, splitForScoring } from '@loupe/explainer';
import { Gpt2Tokenizer, readManifest } from '@loupe/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DatasetNeuron,
  type DatasetServer,
  explanationsPath,
  generateDataset,
  recordsPath,
  serveDataset,
  UNMATCHED_TOKENS,
  writeDataset,
} from '../support/openai-dataset.js';
import { freePort, type RunningProcess, runCli, startProcess } from '../support/process.js';
import { type ServedTiny, serveTiny } from '../support/served-tiny.js';

// `loupe import openai-neurons` as a user runs it, against a local server in the layout of OpenAI's
// public dataset (both object forms, a null score, Python NaN, missing and malformed files, a 503),
// then the imported units through the explainer service over gRPC, and a re-scoring job on them.
const HOOK = (layer: number) => `blocks.${layer}.mlp.hook_post`;
const unitOf = (layer: number, neuron: number) => `tiny/${HOOK(layer)}/${neuron}`;
const FIRST = 12; // neurons 0-11 of layers 0-1: the first import; 12-59: the kill -9 test

let tiny: ServedTiny;
let env: Record<string, string>;
let dataset: DatasetNeuron[];
let server: DatasetServer;
let slow: DatasetServer;
let store: Database;
let tokenizer: Gpt2Tokenizer;
let explainer: RunningProcess;
let client: ExplainerApi;

const find = (layer: number, neuron: number) =>
  dataset.find((n) => n.layer === layer && n.neuron === neuron)!;
// biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field
type Json = any;
const call = (method: string, request: object): Promise<Json> =>
  (client as unknown as Record<string, (r: object) => Promise<Json>>)[method](request);

beforeAll(async () => {
  tiny = await serveTiny('loupe-openai-import-');
  env = { ...tiny.dbEnv, LOUPE_DATA_DIR: tiny.dataDir, LOUPE_LLM_BASE_URL: '', LOUPE_LOG_LEVEL: 'silent' };
  dataset = generateDataset({ layers: 2, neurons: 60, records: 8, length: 16 });
  find(0, 1).explanations[1].score = null; // OpenAI's ev_correlation_score may be null
  find(0, 5).moments.skewness = Number.NaN; // written as bare NaN, Python-style (0/5 is an old-form file)
  const root = path.join(tiny.scratch, 'openai');
  await writeDataset(root, dataset);
  await fs.rm(path.join(root, explanationsPath(0, 2))); // missing explanations
  await fs.writeFile(path.join(root, recordsPath(0, 3)), '{"neuron_id": {"layer_index": 0, "neu'); // truncated
  // an explanations file that holds the wrong dataclass
  await fs.writeFile(
    path.join(root, explanationsPath(1, 4)),
    '{"dataclass_name":"NeuronId","layer_index":1,"neuron_index":4}\n',
  );
  await fs.rm(path.join(root, recordsPath(1, 11))); // both files of 1/11 missing: nothing to store
  await fs.rm(path.join(root, explanationsPath(1, 11)));
  server = await serveDataset(root, { failFirst: (p) => p === recordsPath(1, 7) });
  slow = await serveDataset(root, { delayMs: 25 });
  store = await openDatabase(
    { databaseUrl: tiny.db.url, dataDir: tiny.dataDir, embeddedPgPort: 0 },
    {
      schema: EXPLAINER_SCHEMA,
      migrationsDir: EXPLAINER_MIGRATIONS_DIR,
      applicationName: 'openai-import-test',
    },
  );
  const manifest = await readManifest(tiny.servedModel);
  tokenizer = await Gpt2Tokenizer.load(tiny.servedModel, manifest.tokenizer);
}, 120_000);

afterAll(async () => {
  client?.close();
  await explainer?.stop();
  await store?.close();
  await server?.close();
  await slow?.close();
  await tiny?.db.stop();
  if (tiny) await fs.rm(tiny.scratch, { recursive: true, force: true });
});

const importArgs = (source: string, neurons: string, extra: string[] = []) => [
  'import',
  'openai-neurons',
  '--source',
  source,
  '--model',
  'tiny',
  '--layers',
  '0-1',
  '--neurons',
  neurons,
  '--json',
  ...extra,
];

describe('loupe import openai-neurons', () => {
  it('imports both object forms, skips and names missing and malformed files', async () => {
    const { code, stdout, stderr } = await runCli(
      importArgs(server.url, `0-${FIRST - 1}`, ['--concurrency', '3']),
      env,
    );
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout);
    expect(summary).toMatchObject({
      neurons: 2 * FIRST,
      imported: 2 * FIRST - 1,
      alreadyImported: 0,
      skipped: 1,
      missingFiles: 3,
      malformedFiles: 2,
      unreadableFiles: 0,
      // two explanations per neuron, less 0/2 (missing), 1/4 (malformed) and 1/11 (missing)
      explanations: 2 * (2 * FIRST - 3),
    });
    const named = summary.problems.map((p: { kind: string; file: string }) => `${p.kind} ${p.file}`).sort();
    expect(named).toEqual(
      [
        `missing ${explanationsPath(0, 2)}`,
        `malformed ${recordsPath(0, 3)}`,
        `malformed ${explanationsPath(1, 4)}`,
        `missing ${recordsPath(1, 11)}`,
        `missing ${explanationsPath(1, 11)}`,
      ].sort(),
    );
    expect(stderr).toContain(explanationsPath(0, 2));
    expect(stderr).toMatch(/neurons\/s/);
    // the 503 was retried, not skipped
    expect(server.requests.filter((p) => p === recordsPath(1, 7))).toHaveLength(2);

    const rows = await store.sql`SELECT count(*)::int AS n FROM published_neurons`;
    expect(rows[0].n).toBe(2 * FIRST - 1);
  });

  it('keeps the published records, token ids where the string matches a token exactly, and the moments', async () => {
    for (const [layer, neuron] of [
      [0, 0], // with dataclass_name
      [0, 5], // without, and a NaN moment
    ]) {
      const want = find(layer, neuron);
      const [row] = await store.sql`SELECT * FROM published_neurons WHERE unit = ${unitOf(layer, neuron)}`;
      expect(row.records.top.map((r: Json) => r.tokens)).toEqual(want.top.map((r) => r.tokens));
      expect(row.records.top.map((r: Json) => r.activations)).toEqual(want.top.map((r) => r.activations));
      expect(row.records.random.map((r: Json) => r.activations)).toEqual(
        want.random.map((r) => r.activations),
      );
      expect(row.records.quantiles.map((q: Json[]) => q.map((r) => r.tokens))).toEqual(
        want.quantiles.map((q) => q.map((r) => r.tokens)),
      );
      expect(row.quantile_boundaries).toEqual(want.quantileBoundaries);
      expect(row.mean).toBe(want.moments.mean);
      expect(row.variance).toBe(want.moments.variance);
      expect(row.kurtosis).toBe(want.moments.kurtosis);
      expect(row.skewness).toBe(Number.isNaN(want.moments.skewness) ? null : want.moments.skewness);
      expect(row.max_activation).toBe(Math.max(...want.top.flatMap((r) => r.activations)));
      // ids from the model's own tokenizer: a string that encodes to exactly one token whose display is itself
      const tokens = row.records.top.flatMap((r: Json) => r.tokens) as string[];
      const ids = row.records.top.flatMap((r: Json) => r.ids) as (number | null)[];
      let unmatched = 0;
      tokens.forEach((token, i) => {
        if (UNMATCHED_TOKENS.includes(token)) {
          unmatched++;
          expect(ids[i], token).toBeNull();
        } else {
          const encoded = tokenizer.encode(token);
          expect(encoded, token).toHaveLength(1);
          expect(ids[i], token).toBe(encoded[0]);
        }
      });
      expect(unmatched).toBeGreaterThan(0);
    }
  });

  it('a kill -9 mid-import, then the same command again: nothing lost, nothing twice', async () => {
    const args = importArgs(slow.url, `${FIRST}-59`, ['--concurrency', '2']);
    const units = dataset.filter((n) => n.neuron >= FIRST).map((n) => unitOf(n.layer, n.neuron));
    const count = async () =>
      (
        await store.sql`SELECT count(*)::int AS n FROM published_neurons WHERE unit = ANY(${units}::text[])`
      )[0].n as number;
    const running = startProcess('services/cli/dist/main.js', env, args);
    const deadline = Date.now() + 60_000;
    while ((await count()) < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await running.stop('SIGKILL');
    const before = await count();
    expect(before).toBeGreaterThanOrEqual(10);
    expect(before).toBeLessThan(units.length);

    const { code, stdout, stderr } = await runCli(args, env);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout);
    expect(summary.alreadyImported).toBe(before);
    expect(summary.alreadyImported + summary.imported).toBe(units.length);
    expect(await count()).toBe(units.length);
    const [e] = await store.sql`
      SELECT count(*)::int AS n, count(DISTINCT (unit, explanation))::int AS distinct_n
      FROM explanations WHERE unit = ANY(${units}::text[])`;
    expect(e).toEqual({ n: 2 * units.length, distinct_n: 2 * units.length });

    // a third run over everything finds it all there and writes nothing
    const again = JSON.parse((await runCli(importArgs(slow.url, `${FIRST}-59`), env)).stdout);
    expect(again).toMatchObject({ imported: 0, alreadyImported: units.length });
  }, 120_000);

  it('lists imported neurons by best published score, and the score picture per layer', async () => {
    // independently: each stored neuron's best published score (null where its explanations were not read)
    const unread = new Set(['0/2', '1/4']);
    const expected = dataset
      .filter((n) => !(n.layer === 1 && n.neuron === 11))
      .map((n) => {
        const scores = n.explanations.map((e) => e.score).filter((x): x is number => x !== null);
        const best = unread.has(`${n.layer}/${n.neuron}`) || scores.length === 0 ? null : Math.max(...scores);
        return { unit: unitOf(n.layer, n.neuron), layer: n.layer, neuron: n.neuron, score: best };
      });
    const above = expected
      .filter((n) => n.score !== null && n.score >= 0.3)
      .sort((a, b) => b.score! - a.score! || a.layer - b.layer || a.neuron - b.neuron);
    const listed = await runCli(
      ['published', 'list', '--model', 'tiny', '--min-score', '0.3', '--limit', '1000', '--json'],
      env,
    );
    expect(listed.code, listed.stderr).toBe(0);
    const list = JSON.parse(listed.stdout);
    expect(list.total).toBe(above.length);
    expect(list.neurons.map((n: Json) => [n.unit, n.score])).toEqual(above.map((n) => [n.unit, n.score]));
    const page = JSON.parse(
      (
        await runCli(
          ['published', 'list', '--model', 'tiny', '--layer', '1', '--offset', '2', '--limit', '3', '--json'],
          env,
        )
      ).stdout,
    );
    const layer1 = expected
      .filter((n) => n.layer === 1)
      .sort((a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity) || a.neuron - b.neuron);
    expect(page.total).toBe(layer1.length);
    expect(page.neurons.map((n: Json) => n.unit)).toEqual(layer1.slice(2, 5).map((n) => n.unit));

    const pictured = await runCli(
      ['published', 'layers', '--model', 'tiny', '--bins', '4', '--threshold', '0.5', '--json'],
      env,
    );
    expect(pictured.code, pictured.stderr).toBe(0);
    const picture = JSON.parse(pictured.stdout);
    expect(picture.edges).toEqual([-1, -0.5, 0, 0.5, 1]);
    for (const layer of [0, 1]) {
      const rows = expected.filter((n) => n.layer === layer);
      const scored = rows.map((n) => n.score).filter((x): x is number => x !== null);
      const histogram = [0, 0, 0, 0];
      for (const s of scored) histogram[Math.min(3, Math.floor((s + 1) / 0.5))]++;
      const got = picture.layers.find((l: Json) => l.layer === layer);
      expect(got).toMatchObject({
        neurons: rows.length,
        unscored: rows.length - scored.length,
        atLeastThreshold: scored.filter((s) => s >= 0.5).length,
        histogram,
      });
      expect(got.mean).toBeCloseTo(scored.reduce((a, b) => a + b, 0) / scored.length, 12);
    }
  });

  it('refuses a range outside the model, naming the flag', async () => {
    const { code, stderr } = await runCli(importArgs(server.url, '0-300'), env);
    expect(code).toBe(2);
    expect(stderr).toContain('--neurons "0-300"');
  });
});

describe('imported units in the explainer service', () => {
  beforeAll(async () => {
    const address = `127.0.0.1:${await freePort()}`;
    explainer = startProcess('services/explainer/dist/main.js', {
      ...env,
      LOUPE_EXPLAINER_ADDR: address,
      // nothing listens here: a unit without published records could not get any
      LOUPE_CAPTURE_ADDR: `127.0.0.1:${await freePort()}`,
    });
    client = explainerServiceClient(address);
    await client
      .ready()
      .catch((e: Error) => Promise.reject(new Error(`${e.message}\n${explainer.stderr()}`)));
  }, 60_000);

  it("lists the published explanations with OpenAI's score, null kept with its reason", async () => {
    const reply = await call('ListExplanations', { units: [unitOf(0, 0), unitOf(0, 1)] });
    const byText = new Map(reply.explanations.map((e: Json) => [e.score.explanation, e]));
    for (const [layer, neuron] of [
      [0, 0],
      [0, 1],
    ])
      for (const want of find(layer, neuron).explanations) {
        const got = byText.get(want.explanation) as Json;
        expect(got, want.explanation).toBeDefined();
        expect(got.unit).toBe(unitOf(layer, neuron));
        expect(got.explainerModel).toMatch(/published by OpenAI/);
        expect(got.simulatorModel).toMatch(/published by OpenAI/);
        const provenance = JSON.parse(got.score.provenanceJson);
        expect(provenance).toMatchObject({ published_by: 'OpenAI', score_name: 'ev_correlation_score' });
        if (want.score === null) {
          expect(got.score.score ?? null).toBeNull();
          expect(got.score.reason).toMatch(/ev_correlation_score/);
        } else {
          expect(got.score.score).toBe(want.score);
          expect(provenance.rsquared_score).toBe(want.score * want.score);
        }
      }
    const search = await call('SearchExplanations', {
      query: 'bodies of water',
      unitPrefix: 'tiny/blocks.1.',
    });
    expect(search.hits.length).toBeGreaterThan(0);
    expect(search.hits.every((h: Json) => h.unit.startsWith('tiny/blocks.1.'))).toBe(true);
  });

  it('serves the published records, moments and browse lists over gRPC', async () => {
    const want = find(0, 5); // old form, NaN skewness
    const neuron = await call('GetPublishedNeuron', { unit: unitOf(0, 5) });
    expect(neuron).toMatchObject({
      unit: unitOf(0, 5),
      publisher: 'published by OpenAI',
      layer: 0,
      neuron: 5,
      mean: want.moments.mean,
      kurtosis: want.moments.kurtosis,
      quantileBoundaries: want.quantileBoundaries,
      explanations: 2,
    });
    expect(neuron.skewness ?? null).toBeNull();
    expect(neuron.top.map((r: Json) => r.activations)).toEqual(want.top.map((r) => r.activations));
    expect(neuron.quantiles.map((q: Json) => q.records.length)).toEqual(want.quantiles.map((q) => q.length));
    const tokens = neuron.top.flatMap((r: Json) => r.tokens) as string[];
    const ids = neuron.top.flatMap((r: Json) => r.tokenIds) as number[];
    tokens.forEach((t, i) => {
      expect(ids[i], t).toBe(UNMATCHED_TOKENS.includes(t) ? -1 : tokenizer.encode(t)[0]);
    });
    await expect(call('GetPublishedNeuron', { unit: 'tiny/blocks.0.mlp.hook_post/200' })).rejects.toThrow(
      /NOT_FOUND|not imported/,
    );

    // the same pages and picture as `loupe published`, over the wire
    const cli = JSON.parse(
      (await runCli(['published', 'list', '--model', 'tiny', '--layer', '0', '--limit', '7', '--json'], env))
        .stdout,
    );
    const wire = await call('ListPublishedNeurons', { model: 'tiny', layer: 0, limit: 7 });
    expect(wire.total).toBe(cli.total);
    expect(wire.neurons.map((n: Json) => [n.unit, n.score ?? null, n.explanation])).toEqual(
      cli.neurons.map((n: Json) => [n.unit, n.score, n.explanation ?? '']),
    );
    const picture = JSON.parse(
      (await runCli(['published', 'layers', '--model', 'tiny', '--bins', '5', '--json'], env)).stdout,
    );
    const byLayer = await call('PublishedScoresByLayer', { model: 'tiny', bins: 5 });
    expect(byLayer.edges).toEqual(picture.edges);
    expect(byLayer.threshold).toBe(0.8);
    expect(
      byLayer.layers.map((l: Json) => [l.layer, l.neurons, l.unscored, l.atLeastThreshold, l.histogram]),
    ).toEqual(
      picture.layers.map((l: Json) => [l.layer, l.neurons, l.unscored, l.atLeastThreshold, l.histogram]),
    );
  });

  it('re-scores imported units on exactly their published records', async () => {
    const units = [unitOf(0, 6), unitOf(0, 7)];
    const started = await call('StartScoringJob', {
      units: 'tiny/blocks.0.mlp.hook_post/6-7',
      method: 'simulation',
    });
    let job = started;
    for (let i = 0; i < 300 && !['done', 'failed'].includes(job.status); i++) {
      await new Promise((r) => setTimeout(r, 100));
      job = await call('GetJob', { id: started.id });
    }
    expect(job, explainer.stderr()).toMatchObject({ status: 'done', unitsDone: 2, unitsFailed: 0 });
    const reply = await call('ListExplanations', { units });
    for (const unit of units) {
      const neuron = find(0, Number(unit.split('/')[2]));
      const rows = reply.explanations.filter((e: Json) => e.unit === unit);
      // side by side: OpenAI's two and the re-score
      expect(rows.filter((e: Json) => /published by OpenAI/.test(e.simulatorModel))).toHaveLength(2);
      const rescored = rows.find((e: Json) => e.simulatorModel === 'baseline-statistical');
      expect(rescored, JSON.stringify(rows)).toBeDefined();
      // the scoring set the explainer draws from the published records, by their published positions
      const ids = (side: 'top' | 'random') =>
        neuron[side].map((r, i) => ({
          id: `openai:${side}:${i}`,
          tokens: r.tokens,
          activations: r.activations,
        }));
      const { score } = splitForScoring({ top: ids('top'), random: ids('random') });
      const provenance = JSON.parse(rescored.score.provenanceJson);
      expect(provenance.record_ids).toEqual({
        top: score.top.map((r) => r.id),
        random: score.random.map((r) => r.id),
      });
    }
  });
});
