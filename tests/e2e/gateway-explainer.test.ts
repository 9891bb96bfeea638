import fs from 'node:fs/promises';
import path from 'node:path';
import { Rng } from '@loupe/common';
import { openDatabase } from '@loupe/common/db';
import {
  type CaptureApi,
  captureServiceClient,
  type ExplainerApi,
  explainerServiceClient,
  type NeuronRecordResponse__Output,
  type SaeApi,
  saeServiceClient,
} from '@loupe/common/grpc';
import { computeFeatureRecords, importSae, SAE_MIGRATIONS_DIR, SAE_SCHEMA, writeSaeLens } from '@loupe/sae';
// graphql-ws (client) and ws come with @nestjs/graphql, which the gateway serves subscriptions with
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { TestDatabase } from '../support/database.js';
import { freePort, type RunningProcess, runCli, startProcess } from '../support/process.js';
import { serveTiny } from '../support/served-tiny.js';

// Capture service, explainer (built-in baseline, no LLM server) and gateway as real processes over a
// real `loupe capture` of the tiny model. What the gateway says about explanations, scores, jobs and
// browse lists is compared with what the explainer and capture services themselves say over gRPC.
const HOOK = 'blocks.1.mlp.hook_post';
const NEURON = 3;
const UNIT = `tiny/${HOOK}/${NEURON}`;
const JOB_UNITS = [5, 6, 7, 8];
// a random TopK SAE over a residual hook captured alongside, with feature records from that capture
const SAE_ID = 'tiny-res1';
const SAE_HOOK = 'blocks.1.hook_resid_pre';
const D_MODEL = 64; // the tiny fixture's d_model
const D_SAE = 48;

let db: TestDatabase;
let capture: RunningProcess;
let explainer: RunningProcess;
let saeService: RunningProcess;
let saeApi: SaeApi;
let gateway: RunningProcess;
let captureApi: CaptureApi;
let explainerApi: ExplainerApi;
let url: string;
let auth: Record<string, string>;

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field against gRPC
type Json = any;

interface GraphQLResponse {
  data?: Json;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
  raw: string;
}

async function gql(query: string, variables: Record<string, unknown> = {}, headers = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const raw = await response.text();
  return { raw, ...JSON.parse(raw) } as GraphQLResponse;
}

async function ok(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>) {
  const response = await gql(query, variables, headers);
  expect(response.errors, response.raw).toBeUndefined();
  return response.data;
}

async function failure(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>) {
  const response = await gql(query, variables, headers);
  expect(response.errors, response.raw).toHaveLength(1);
  expect(response.raw).not.toMatch(/stacktrace|127\.0\.0\.1|at [\w.]+ \(/);
  return response.errors![0];
}

/** Imports a random TopK SAE over SAE_HOOK and computes its feature records from the capture job's shards. */
async function writeSae(scratch: string, dataDir: string): Promise<void> {
  const store = await openDatabase(
    { databaseUrl: db.url, dataDir, embeddedPgPort: 0 },
    { schema: SAE_SCHEMA, migrationsDir: SAE_MIGRATIONS_DIR, applicationName: 'gateway-explainer-test' },
  );
  try {
    const rng = new Rng(5);
    const folder = path.join(scratch, 'saelens', SAE_ID);
    await writeSaeLens(folder, {
      config: {
        architecture: 'topk',
        dIn: D_MODEL,
        dSae: D_SAE,
        k: 4,
        hookName: SAE_HOOK,
        modelName: 'tiny',
        applyBDecToInput: true,
        normalizeActivations: 'none',
        activationScale: 1,
      },
      weights: {
        W_enc: rng.normalFloat32(D_MODEL * D_SAE, 0, 0.3),
        b_enc: rng.normalFloat32(D_SAE, 0, 0.1),
        W_dec: rng.normalFloat32(D_SAE * D_MODEL, 0, 0.2),
        b_dec: rng.normalFloat32(D_MODEL, 0, 0.05),
      },
    });
    await importSae(store.sql, dataDir, folder, { id: SAE_ID });
    const [job] = await fs.readdir(path.join(dataDir, 'capture'));
    await computeFeatureRecords(store.sql, dataDir, SAE_ID, path.join(dataDir, 'capture', job), {
      device: 'cpu',
      intraOpThreads: 1,
      modelDir: path.join(dataDir, 'models', 'tiny'),
    });
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  const served = await serveTiny('loupe-gateway-explainer-');
  const { scratch, dataDir, servedModel, dbEnv } = served;
  db = served.db;
  const captureAddress = `127.0.0.1:${await freePort()}`;
  const explainerAddress = `127.0.0.1:${await freePort()}`;
  const gatewayPort = await freePort();
  const env = {
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: 'tiny',
    LOUPE_CAPTURE_ADDR: captureAddress,
    LOUPE_EXPLAINER_ADDR: explainerAddress,
    LOUPE_SAE_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_GATEWAY_PORT: String(gatewayPort),
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    ...dbEnv,
    // the built-in baseline explains and simulates
    LOUPE_LLM_BASE_URL: '',
    LOUPE_EMBEDDINGS_BASE_URL: '',
  };
  const captured = await runCli(
    ['capture', '--model', servedModel, '--hooks', `${HOOK},${SAE_HOOK}`, '--max-tokens', '3000'],
    env,
  );
  expect(captured.code, captured.stderr).toBe(0);
  const created = await runCli(['apikey', 'create', '--name', 'e2e-explainer'], env);
  expect(created.code, created.stderr).toBe(0);
  auth = { authorization: `Bearer ${JSON.parse(created.stdout).key}` };
  await writeSae(scratch, dataDir);
  capture = startProcess('services/capture/dist/main.js', env);
  explainer = startProcess('services/explainer/dist/main.js', env);
  saeService = startProcess('services/sae/dist/main.js', env);
  saeApi = saeServiceClient(env.LOUPE_SAE_ADDR);
  gateway = startProcess('services/gateway/dist/bin.js', env);
  captureApi = captureServiceClient(captureAddress);
  explainerApi = explainerServiceClient(explainerAddress);
  await Promise.all([captureApi.ready(), saeApi.ready()]);
  await explainerApi.ready().catch((e) => Promise.reject(new Error(`${e.message}\n${explainer.stderr()}`)));
  url = `http://127.0.0.1:${gatewayPort}/graphql`;
  for (let i = 0; ; i++) {
    const up = await gql('{ __typename }').then(
      () => true,
      () => false,
    );
    if (up) break;
    if (i > 240 || gateway.child.exitCode !== null)
      throw new Error(`gateway did not start:\n${gateway.stderr()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
});

afterAll(async () => {
  captureApi?.close();
  explainerApi?.close();
  saeApi?.close();
  await gateway?.stop();
  await saeService?.stop();
  await explainer?.stop();
  await capture?.stop();
  await db?.stop();
});

const EXPLANATION_FIELDS = `id unitId text explainerModel simulatorModel promptVersion baseline createdAt
  score { method value topOnly randomOnly ciLow ciHigh reason baseline
          provenance { explainerModel simulatorModel simulatorMethod recordSplit promptVersion
            recordIds { top random } seed failures json }
          usage { calls promptTokens completionTokens retries } }`;

/** The records of a neuron that a score's record ids name ("top:window:N"), in that order. */
function recordsNamed(record: NeuronRecordResponse__Output, ids: { top: string[]; random: string[] }) {
  const pick = (side: 'top' | 'random') =>
    ids[side].map((id) => {
      const window = Number(/^\w+:window:(\d+)$/.exec(id)![1]);
      const found = record[side].find((w) => Number(w.window) === window)!;
      expect(found, id).toBeDefined();
      return { window, ids: found.ids, tokens: found.tokens, values: found.values };
    });
  return { top: pick('top'), random: pick('random') };
}

describe('GraphQL gateway over the explainer', () => {
  let explained: Json;

  it('explains a neuron, saved with its held-out score, which the explainer reproduces over gRPC', async () => {
    const data = await ok(
      `mutation ($unit: ID!) { explain(unit: $unit, options: { seed: 7 }) {
        explanation { ${EXPLANATION_FIELDS} } candidates { text selectionScore }
        simulatedTop { ok values failure } simulatedRandom { ok values } } }`,
      { unit: UNIT },
      auth,
    );
    const result = data.explain;
    explained = result.explanation;
    expect(explained).toMatchObject({
      unitId: UNIT,
      explainerModel: 'baseline-statistical',
      simulatorModel: 'baseline-statistical',
      baseline: true,
      score: {
        method: 'SIMULATION',
        baseline: true,
        provenance: { seed: 7, failures: 0, simulatorMethod: 'baseline', recordSplit: 'openai' },
      },
    });
    expect(result.candidates).toEqual([{ text: explained.text, selectionScore: null }]);
    const { recordIds } = explained.score.provenance;
    expect(recordIds.top.length).toBeGreaterThan(0);
    expect(result.simulatedTop).toHaveLength(recordIds.top.length);
    expect(result.simulatedRandom).toHaveLength(recordIds.random.length);

    // read back on the unit: the same stored explanation
    const unit = await ok(
      `query ($id: ID!) { unit(id: $id) { id explanations { totalCount edges { node { ${EXPLANATION_FIELDS} } } } } }`,
      { id: UNIT },
    );
    expect(unit.unit.explanations.totalCount).toBe(1);
    expect(unit.unit.explanations.edges[0].node).toEqual(explained);

    // the explainer's own Score of that sentence on the same held-out records with the same seed
    const record = await captureApi.NeuronRecord({ model: 'tiny', hook: HOOK, neuron: NEURON });
    const reference = await explainerApi.Score({
      explanation: explained.text,
      records: recordsNamed(record, recordIds),
      seed: 7,
      method: 'simulation',
    });
    const score = reference.score!;
    expect(score.score).toBeDefined();
    expect(explained.score.value).toBeCloseTo(score.score!, 12);
    expect(explained.score.topOnly).toBeCloseTo(score.topOnly!, 12);
    expect(explained.score.randomOnly).toBeCloseTo(score.randomOnly!, 12);
    expect(explained.score.ciLow).toBeCloseTo(score.ciLow!, 12);
    expect(explained.score.ciHigh).toBeCloseTo(score.ciHigh!, 12);
    expect(result.simulatedTop.map((s: Json) => s.values)).toEqual(score.simulatedTop.map((s) => s.values));
  });

  it('scores an explanation like the explainer Score RPC, for every method', async () => {
    for (const method of ['SIMULATION', 'DETECTION', 'FUZZING']) {
      const data = await ok(
        `mutation ($unit: ID!, $text: String!, $method: ScoringMethod) {
          score(unit: $unit, explanation: $text, method: $method, options: { seed: 3, save: false }) {
            score { method value topOnly randomOnly ciLow ciHigh reason baseline } explanation { id } } }`,
        { unit: UNIT, text: explained.text, method },
        auth,
      );
      const reference = (
        await explainerApi.Score({
          unit: UNIT,
          explanation: explained.text,
          method: method.toLowerCase(),
          seed: 3,
        })
      ).score!;
      const got = data.score.score;
      expect(data.score.explanation).toBeNull();
      expect(got).toMatchObject({ method, baseline: true, reason: reference.reason || null });
      if (reference.score === undefined) expect(got.value).toBeNull();
      else expect(got.value).toBeCloseTo(reference.score, 12);
      if (method === 'SIMULATION') {
        expect(got.ciLow).toBeCloseTo(reference.ciLow!, 12);
        expect(got.topOnly).toBeCloseTo(reference.topOnly!, 12);
      } else {
        // balanced accuracy: no sides, no interval
        expect([got.topOnly, got.randomOnly, got.ciLow]).toEqual([null, null, null]);
      }
    }
  });

  it('finds the explained unit by its explanation text', async () => {
    const words = explained.text.replace(/[^A-Za-z0-9\s]/g, ' ');
    const data = await ok(
      `query ($q: String!) { searchExplanations(query: $q, unitPrefix: "tiny/", first: 100) {
        pageInfo { hasNextPage } edges { relevance node { id ... on Neuron { hook index } } explanation { id text } } } }`,
      { q: words },
    );
    const hit = data.searchExplanations.edges.find((e: Json) => e.explanation.id === explained.id);
    expect(hit).toMatchObject({
      node: { id: UNIT, hook: HOOK, index: NEURON },
      explanation: { text: explained.text },
    });
    expect(hit.relevance).toBeGreaterThan(0);
    const none = await ok('{ searchExplanations(query: "zyzzyva") { edges { cursor } } }');
    expect(none.searchExplanations.edges).toEqual([]);
  });

  it('runs a scoring job to done with its progress pushed over the subscription', async () => {
    const units = `tiny/${HOOK}/${JOB_UNITS.join(',')}`;
    const started = await ok(
      `mutation ($input: StartScoringJobInput!) { startScoringJob(input: $input) {
        id status method unitsTotal } }`,
      { input: { units, concurrency: 2, seed: 1 } },
      auth,
    );
    expect(started.startScoringJob).toMatchObject({ method: 'SIMULATION', unitsTotal: JOB_UNITS.length });
    const id = started.startScoringJob.id;
    const client = createClient({
      url: url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
    const seen: Json[] = [];
    try {
      const subscription = client.iterate({
        query: `subscription ($id: ID!) { scoringJobProgress(id: $id) {
          id status unitsTotal unitsDone unitsFailed progress llmCalls tokensSpent costUsd error } }`,
        variables: { id },
      });
      for await (const result of subscription) {
        expect(result.errors).toBeUndefined();
        seen.push(result.data!.scoringJobProgress);
      }
    } finally {
      await client.dispose();
    }
    expect(seen.at(-1)).toMatchObject({
      id,
      status: 'done',
      unitsDone: JOB_UNITS.length,
      unitsFailed: 0,
      progress: 1,
      // the baseline spends no LLM tokens
      llmCalls: 0,
      tokensSpent: 0,
      costUsd: 0,
      error: null,
    });
    const done = seen.map((j) => j.unitsDone);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    const reference = await explainerApi.GetJob({ id });
    const job = await ok(`query ($id: ID!) { scoringJob(id: $id) { status unitsDone } }`, { id });
    expect(job.scoringJob).toEqual({ status: reference.status, unitsDone: reference.unitsDone });
  });

  it("lists a hook's neurons ordered like a sort of the capture service's statistics, pages included", async () => {
    const all = await captureApi.ListNeurons({
      model: 'tiny',
      hook: HOOK,
      orderBy: 'neuron',
      offset: 0,
      limit: 0,
    });
    expect(all.neurons.map((n) => n.neuron)).toEqual([...all.neurons.keys()]);
    // independent check of the list's statistics: NeuronRecord of one neuron
    const record = await captureApi.NeuronRecord({ model: 'tiny', hook: HOOK, neuron: NEURON });
    expect(all.neurons[NEURON]).toMatchObject({
      maxActivation: record.maxActivation,
      fractionNonzero: record.fractionNonzero,
      histogram: record.histogram,
    });
    const best = new Map<number, number>();
    const scored = await explainerApi.ListExplanations({
      units: all.neurons.map((n) => `tiny/${HOOK}/${n.neuron}`),
      bestOnly: true,
      method: 'simulation',
    });
    for (const e of scored.explanations) best.set(Number(e.unit.split('/')[2]), e.score!.score!);
    expect(best.size).toBeGreaterThanOrEqual(JOB_UNITS.length);

    const key = {
      MAX_ACTIVATION: (n: (typeof all.neurons)[number]) => n.maxActivation,
      FREQUENCY: (n: (typeof all.neurons)[number]) => n.fractionNonzero,
      SCORE: (n: (typeof all.neurons)[number]) => best.get(n.neuron) ?? -Infinity,
    };
    for (const [order, value] of Object.entries(key)) {
      const expected = [...all.neurons]
        .sort((a, b) => value(b) - value(a) || a.neuron - b.neuron)
        .map((n) => ({ index: n.neuron, score: best.get(n.neuron) ?? null }));
      const got: Json[] = [];
      let after: string | null = null;
      for (;;) {
        const data = await ok(
          `query ($order: UnitOrder, $after: String) { hookUnits(hook: "${HOOK}", orderBy: $order, first: 100, after: $after) {
            totalCount pageInfo { hasNextPage endCursor } edges { score node { id index stats { maxActivation fractionNonzero } } } } }`,
          { order, after },
        );
        const page = data.hookUnits;
        expect(page.totalCount).toBe(all.total);
        got.push(...page.edges);
        if (!page.pageInfo.hasNextPage) break;
        after = page.pageInfo.endCursor;
      }
      expect(
        got.map((e) => ({ index: e.node.index, score: e.score })),
        order,
      ).toEqual(expected);
      expect(got[0].node.id).toBe(`tiny/${HOOK}/${expected[0].index}`);
      expect(got[0].node.stats.maxActivation).toBe(all.neurons[expected[0].index].maxActivation);
    }
    // a listed neuron's windows load on demand
    const top = await ok(`{ hookUnits(hook: "${HOOK}", orderBy: SCORE, first: 1) {
      edges { node { top(first: 1) { edges { node { maxValue } } } explanations(first: 1) { edges { node { score { value } } } } } } } }`);
    const [edge] = top.hookUnits.edges;
    expect(edge.node.top.edges).toHaveLength(1);
    expect(edge.node.explanations.edges[0].node.score.value).toBe(Math.max(...best.values()));
  });

  it("lists an SAE's features ordered like a sort of FeatureStats, by score after scoring two", async () => {
    const stats = await Promise.all(
      [...Array(D_SAE).keys()].map((feature) => saeApi.FeatureStats({ saeId: SAE_ID, feature })),
    );
    // two features explained (and saved) through the gateway: their scores order SCORE
    const best = new Map<number, number | null>();
    for (const feature of [1, 2]) {
      const data = await ok(
        `mutation ($u: ID!) { explain(unit: $u, options: { seed: 2 }) {
          explanation { unitId score { value } } } }`,
        { u: `tiny/${SAE_ID}/${feature}` },
        auth,
      );
      expect(data.explain.explanation.unitId).toBe(`tiny/${SAE_ID}/${feature}`);
      best.set(feature, data.explain.explanation.score.value);
    }
    expect([...best.values()].some((v) => v !== null)).toBe(true);
    const key = {
      MAX_ACTIVATION: (i: number) => stats[i].maxActivation,
      FREQUENCY: (i: number) => stats[i].frequency,
      SCORE: (i: number) => best.get(i) ?? -Infinity,
    };
    for (const [order, value] of Object.entries(key)) {
      const expected = [...stats.keys()].sort((a, b) => value(b) - value(a) || a - b);
      const data = await ok(
        `query ($order: UnitOrder) { saeFeatures(saeId: "${SAE_ID}", orderBy: $order, first: 100) {
          totalCount edges { score node { id index stats { maxActivation fractionNonzero } } } } }`,
        { order },
      );
      expect(data.saeFeatures.totalCount).toBe(D_SAE);
      const got = data.saeFeatures.edges;
      expect(
        got.map((e: Json) => e.node.index),
        order,
      ).toEqual(expected);
      expect(got.map((e: Json) => e.score)).toEqual(expected.map((i) => best.get(i) ?? null));
      for (const e of got.slice(0, 3))
        expect(e.node.stats).toEqual({
          maxActivation: stats[e.node.index].maxActivation,
          fractionNonzero: stats[e.node.index].frequency,
        });
    }
  });

  it('cancels a scoring job', async () => {
    const started = await ok(
      `mutation ($input: StartScoringJobInput!) { startScoringJob(input: $input) { id unitsTotal } }`,
      { input: { units: `tiny/${HOOK}/0-255`, concurrency: 1 } },
      auth,
    );
    const { id } = started.startScoringJob;
    const cancelled = await ok(
      'mutation ($id: ID!) { cancelJob(id: $id) { id status ... on ScoringJob { unitsDone unitsTotal } } }',
      { id },
      auth,
    );
    expect(cancelled.cancelJob).toMatchObject({ id, status: 'cancelled' });
    expect(cancelled.cancelJob.unitsDone).toBeLessThan(cancelled.cancelJob.unitsTotal);
    expect((await explainerApi.GetJob({ id })).status).toBe('cancelled');
  });

  it('refuses mutations without an API key and unknown jobs with clear codes', async () => {
    for (const [query, variables] of [
      ['mutation ($u: ID!) { explain(unit: $u) { explanation { id } } }', { u: UNIT }],
      ['mutation ($u: ID!) { score(unit: $u, explanation: "x") { score { value } } }', { u: UNIT }],
      ['mutation { startScoringJob(input: { units: "tiny/blocks.1.mlp.hook_post/0" }) { id } }', {}],
      ['mutation { cancelJob(id: "00000000-0000-4000-8000-000000000000") { id } }', {}],
    ] as const) {
      expect(await failure(query, variables)).toMatchObject({
        extensions: { code: 'UNAUTHENTICATED' },
      });
    }
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect(await failure(`{ scoringJob(id: "${unknown}") { id } }`)).toMatchObject({
      extensions: { code: 'NOT_FOUND' },
      message: expect.stringMatching(unknown),
    });
    expect(await failure(`mutation { cancelJob(id: "${unknown}") { id } }`, {}, auth)).toMatchObject({
      extensions: { code: 'NOT_FOUND' },
    });
    expect(await failure('{ scoringJob(id: "nope") { id } }')).toMatchObject({
      extensions: { code: 'BAD_USER_INPUT' },
    });
    expect(
      await failure(
        'mutation ($u: ID!) { explain(unit: $u) { explanation { id } } }',
        { u: 'tiny/blocks.9.mlp.hook_post/0' },
        auth,
      ),
    ).toMatchObject({ extensions: { code: 'NOT_FOUND' } });
    expect(await failure('{ hookUnits(hook: "blocks.1.hook_resid_pre") { totalCount } }')).toMatchObject({
      extensions: { code: 'BAD_USER_INPUT' },
      message: expect.stringMatching(/mlp\.hook_post/),
    });
  });
});
