import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SCHEMA_FILE } from '@loupe/gateway';
import { buildClientSchema, buildSchema, getIntrospectionQuery, printSchema } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { type CaptureApi, captureClient, floats } from '../support/grpc.js';
import { convertedFixture } from '../support/model.js';
import { freePort, type RunningProcess, runCli, startProcess } from '../support/process.js';

// The compiled capture service and gateway as real processes, the gateway spoken to over HTTP POST
// /graphql; every answer is compared with what the capture service itself says over gRPC.
const MAX_TEXT_CHARS = 2000;
const NEURON_HOOK = 'blocks.1.mlp.hook_post';

let db: TestDatabase;
let capture: RunningProcess;
let gateway: RunningProcess;
let client: CaptureApi;
let url: string;
let env: Record<string, string>;

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field against gRPC
type Json = any;

interface GraphQLResponse {
  status: number;
  data?: Json;
  errors?: { message: string; extensions?: Record<string, unknown>; path?: string[] }[];
  raw: string;
}

async function gql(
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GraphQLResponse> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const raw = await response.text();
  return { status: response.status, raw, ...JSON.parse(raw) };
}

/** Data of a query that must succeed. */
async function ok(
  query: string,
  variables?: Record<string, unknown>,
  headers?: Record<string, string>,
): Promise<Json> {
  const response = await gql(query, variables, headers);
  expect(response.errors, response.raw).toBeUndefined();
  return response.data;
}

/** The one error of a query that must fail, with no stack trace or internal address in the answer. */
async function failure(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>) {
  const response = await gql(query, variables, headers);
  expect(response.errors, response.raw).toHaveLength(1);
  expect(response.raw).not.toMatch(/stacktrace|127\.0\.0\.1|at [\w.]+ \(/);
  return response.errors![0];
}

interface Batch {
  rpc: string;
  keys: string[];
}

/** The gateway's "capture batch" log lines from `from` on, once one of them satisfies `last`. */
async function logged(from: number, last: (batch: Batch) => boolean): Promise<Batch[]> {
  for (let i = 0; i < 200; i++) {
    const batches = gateway
      .stderr()
      .slice(from)
      .split('\n')
      .filter((line) => line.includes('"capture batch"'))
      .map((line) => JSON.parse(line))
      .map(({ rpc, keys }) => ({ rpc, keys }));
    if (batches.some(last)) return batches;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the gateway did not log the expected batch');
}

beforeAll(async () => {
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-gateway-'));
  const dataDir = path.join(scratch, 'data');
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  await fs.mkdir(path.join(dataDir, 'models'), { recursive: true });
  await fs.rename(modelDir, path.join(dataDir, 'models', 'tiny'));
  db = await startTestDatabase();
  const captureAddress = `127.0.0.1:${await freePort()}`;
  const gatewayPort = await freePort();
  // no SAE service here (gateway-sae.test.ts has one): feature ids reach a port nothing listens on
  const saeAddress = `127.0.0.1:${await freePort()}`;
  env = {
    LOUPE_SAE_ADDR: saeAddress,
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: 'tiny',
    LOUPE_CAPTURE_ADDR: captureAddress,
    LOUPE_GATEWAY_PORT: String(gatewayPort),
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    ...databaseEnv(db),
    LOUPE_MAX_TEXT_CHARS: String(MAX_TEXT_CHARS),
  };
  capture = startProcess('services/capture/dist/main.js', env);
  // debug level: the gateway logs every batch of capture calls, which the DataLoader test reads
  gateway = startProcess('services/gateway/dist/bin.js', { ...env, LOUPE_LOG_LEVEL: 'debug' });
  client = await captureClient(captureAddress);
  url = `http://127.0.0.1:${gatewayPort}/graphql`;
  for (let i = 0; ; i++) {
    const up = await gql('{ __typename }').then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) break;
    if (i > 240 || gateway.child.exitCode !== null)
      throw new Error(`gateway did not start:\n${gateway.stderr()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
});

afterAll(async () => {
  client?.close();
  await gateway?.stop();
  await capture?.stop();
  await db?.stop();
});

describe('GraphQL gateway over the capture service', () => {
  it('serves exactly the committed schema (services/gateway/schema.graphql)', async () => {
    // compared as printed by graphql-js: the file itself is kept in biome's GraphQL format
    const file = printSchema(buildSchema(await fs.readFile(SCHEMA_FILE, 'utf8')));
    const introspection = await ok(getIntrospectionQuery({ descriptions: true }));
    expect(printSchema(buildClientSchema(introspection))).toBe(file);
  });

  it('describes the model and pages through its hooks with cursors that round-trip', async () => {
    const info = await client.ModelInfo({});
    const data = await ok(`{
      models { totalCount edges { node { name } } }
      model { name nLayer dModel nHead dMlp nPositions vocabSize executionProvider sourceSha256
              hooks(first: 100) { totalCount edges { node { name width } } } } }`);
    expect(data.models).toEqual({ totalCount: 1, edges: [{ node: { name: 'tiny' } }] });
    const { hooks, ...dims } = data.model;
    expect(dims).toEqual({
      name: info.name,
      nLayer: info.nLayer,
      dModel: info.dModel,
      nHead: info.nHead,
      dMlp: info.dMlp,
      nPositions: info.nPositions,
      vocabSize: info.vocabSize,
      executionProvider: 'cpu',
      sourceSha256: info.sourceSha256,
    });
    const all = hooks.edges.map((e: { node: unknown }) => e.node);
    expect(all).toEqual(info.hooks.map((h) => ({ name: h.name, width: h.width })));
    expect(hooks.totalCount).toBe(info.hooks.length);

    const pageQuery = `query ($after: String) { model(name: "tiny") { hooks(first: 7, after: $after) {
      edges { cursor node { name } } pageInfo { hasNextPage hasPreviousPage endCursor } } } }`;
    const paged: string[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const page = (await ok(pageQuery, { after })).model.hooks;
      paged.push(...page.edges.map((e: { node: { name: string } }) => e.node.name));
      expect(page.pageInfo.hasPreviousPage).toBe(after !== null);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(paged).toEqual(info.hooks.map((h) => h.name));
    const bad = await failure(pageQuery, { after: 'not-a-cursor' });
    expect(bad.extensions?.code).toBe('BAD_USER_INPUT');
    expect(bad.message).toMatch(/cursor "not-a-cursor" is not one this API gave out/);
  });

  it('tokenizes exactly as the capture service does', async () => {
    const text = 'Hello world, the café costs €5';
    const expected = await client.Tokenize({ text });
    const data = await ok('query ($text: String!) { tokenize(text: $text) { tokens { id text } } }', {
      text,
    });
    expect(data.tokenize.tokens).toEqual(expected.ids.map((id, i) => ({ id, text: expected.tokens[i] })));
  });

  it('returns the capture service’s activations value for value, whole or by column', async () => {
    const text = 'The capital of France is Paris';
    const hooks = [NEURON_HOOK, 'blocks.0.hook_resid_pre'];
    const expected = await client.Activations({ text, hooks });
    const data = await ok(
      `query ($text: String!, $hooks: [String!]!) { activations(text: $text, hooks: $hooks) {
         tokens { id } hooks { hook width values picked: values(indices: [7, 3]) } } }`,
      { text, hooks },
    );
    expect(data.activations.tokens.map((t: { id: number }) => t.id)).toEqual(expected.ids);
    for (const [h, hook] of hooks.entries()) {
      const got = data.activations.hooks[h];
      const want = floats(expected.activations[hook]);
      const width = hook.includes('mlp') ? 256 : 64;
      expect(got).toMatchObject({ hook, width });
      // float32 values travel as JSON doubles and back: exact
      expect(got.values.flat()).toEqual(Array.from(want));
      expect(got.picked).toEqual(expected.ids.map((_, t) => [want[t * width + 7], want[t * width + 3]]));
    }
  });

  it('refuses bad input with stable codes and clear messages', async () => {
    const activations =
      'query ($text: String!, $hooks: [String!]!) { activations(text: $text, hooks: $hooks) { tokens { id } } }';
    const long = await failure(activations, { text: 'a'.repeat(MAX_TEXT_CHARS + 1), hooks: [NEURON_HOOK] });
    expect(long.extensions).toEqual({ code: 'BAD_USER_INPUT', reason: 'TOO_LONG' });
    expect(long.message).toBe(`text has ${MAX_TEXT_CHARS + 1} characters; the limit is ${MAX_TEXT_CHARS}`);
    const many = await failure(activations, {
      text: 'hi',
      hooks: Array.from({ length: 9 }, (_, i) => `blocks.0.mlp.hook_post${i}`),
    });
    expect(many).toMatchObject({
      extensions: { code: 'BAD_USER_INPUT' },
      message: '9 hooks asked for; the limit is 8 per request',
    });
    // the capture service's own error, passed on with its code
    const hook = await failure(activations, { text: 'hi', hooks: ['blocks.7.hook_resid_pre'] });
    expect(hook.extensions).toEqual({ code: 'BAD_USER_INPUT', reason: 'UNKNOWN_HOOK' });
    expect(hook.message).toMatch(/unknown hook "blocks.7.hook_resid_pre": the model has layers 0-1/);
    const model = await failure('{ model(name: "gpt9") { name } }');
    expect(model.extensions?.code).toBe('NOT_FOUND');
    expect(model.message).toMatch(/unknown model "gpt9"; available: tiny/);

    const unit = 'query ($id: ID!) { unit(id: $id) { id } }';
    const unknown = await failure(unit, { id: `tiny/${NEURON_HOOK}/999` });
    expect(unknown.extensions?.code).toBe('NOT_FOUND');
    expect(unknown.message).toMatch(
      /unknown unit "tiny\/blocks.1.mlp.hook_post\/999": model tiny has neurons .*\{0-255\}/,
    );
    // not a neuron hook, so an SAE id (SAELens names many SAEs like hooks): the SAE service is asked
    expect(await failure(unit, { id: 'tiny/blocks.0.hook_resid_post/3' })).toMatchObject({
      extensions: { code: 'UNAVAILABLE' },
      message: 'the SAE service is unavailable; try again shortly',
    });
    const malformed = await failure(unit, { id: 'neuron-7' });
    expect(malformed.extensions?.code).toBe('BAD_USER_INPUT');
    // the example it suggests is a unit of the served model, which exists
    expect(malformed.message).toMatch(
      /must be model\/hook\/index or model\/sae-id\/index, e.g. tiny\/blocks.1.mlp.hook_post\/0 \(a neuron\)/,
    );

    const deep =
      await failure(`{ model { hooks(first: 2) { edges { node { model { hooks(first: 2) { edges { node {
      model { hooks(first: 2) { edges { node { name } } } } } } } } } } } } }`);
    expect(deep.message).toBe('query is 13 levels deep; the limit is 10: split it into several queries');
    const thirty = JSON.stringify(Array.from({ length: 30 }, (_, i) => `tiny/${NEURON_HOOK}/${i}`));
    const costly = await failure(`{ units(ids: ${thirty}) { top(first: 100) { edges { node {
      tokens { id text } } } } random(first: 100) { edges { node { tokens { id text } values } } }
      quantiles { windows(first: 100) { edges { node { tokens { id text } values } } } } } }`);
    expect(costly.message).toMatch(/^query costs \d+ \(fields × page sizes\); the limit is 25000/);
    expect((await failure('{ model { nope } }')).extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('steers: both continuations share the seed, and the unsteered one is plain Generate', async () => {
    const vector = Array.from({ length: 64 }, (_, i) => (i % 2 ? 1 : -1));
    const options = { maxTokens: 8, temperature: 1, topK: 50, seed: 1234 };
    const data = await ok(
      `query ($edits: [SteeringEdit!]!, $options: SteerOptions) {
         steer(prompt: "Once upon a time", edits: $edits, options: $options) {
           prompt seed steered { text tokens { id } logprobs } unsteered { text tokens { id } logprobs } } }`,
      { edits: [{ hook: 'blocks.0.hook_resid_pre', vector, strength: 8 }], options },
    );
    const plain = await client.Generate({ prompt: 'Once upon a time', ...options });
    const steered = await client.Generate({
      prompt: 'Once upon a time',
      ...options,
      steering: [{ hook: 'blocks.0.hook_resid_pre', vector, strength: 8 }],
    });
    expect(data.steer.seed).toBe(1234);
    expect(data.steer.unsteered.text).toBe(plain.unsteered.text);
    expect(data.steer.unsteered.tokens.map((t: { id: number }) => t.id)).toEqual(plain.unsteered.ids);
    expect(data.steer.steered.text).toBe(steered.steered.text);
    expect(data.steer.steered.text).not.toBe(data.steer.unsteered.text);
    expect(data.steer.steered.logprobs).toEqual(steered.steered.logprobs);

    const steer = 'query ($edits: [SteeringEdit!]!) { steer(prompt: "hi", edits: $edits) { seed } }';
    // CLAMP and ABLATE act on SAE features (tests/e2e/steering-modes.test.ts); a raw vector is only added
    const clampRaw = await failure(steer, {
      edits: [{ hook: 'blocks.0.hook_resid_pre', vector: [1, 2], strength: 2, mode: 'CLAMP' }],
    });
    expect(clampRaw.extensions?.code).toBe('BAD_USER_INPUT');
    expect(clampRaw.message).toMatch(/mode CLAMP applies to SAE features; a raw vector can only be ADDed/);
    const wrongWidth = await failure(steer, { edits: [{ hook: 'blocks.0.hook_resid_pre', vector: [1, 2] }] });
    expect(wrongWidth.message).toMatch(/has 2 values; d_model is 64/);
  });

  it('serves a neuron’s records once a capture job made them; the job needs an API key', async () => {
    const unitQuery = `query ($id: ID!, $after: String) { unit(id: $id) { __typename id model index
      ... on Neuron { hook layer captureJobId }
      stats { maxActivation minActivation meanActivation fractionNonzero tokens }
      histogram { min max counts }
      top(first: 5, after: $after) { totalCount edges { node { window tokens { id text } values maxValue } }
        pageInfo { hasNextPage endCursor } }
      random(first: 100) { totalCount }
      quantiles { from to windows(first: 2) { totalCount edges { node { values } } } } } }`;
    const id = `tiny/${NEURON_HOOK}/7`;
    const before = await failure(unitQuery, { id });
    expect(before.extensions?.code).toBe('NOT_FOUND');
    expect(before.message).toMatch(/no records for tiny\/blocks.1.mlp.hook_post\/7 yet/);

    const start = `mutation ($input: StartCaptureInput!) { startCapture(input: $input) { id status hooks totalTokens } }`;
    const input = { hooks: [NEURON_HOOK], maxTokens: 3000 };
    const anonymous = await failure(start, { input });
    expect(anonymous.extensions?.code).toBe('UNAUTHENTICATED');
    expect(anonymous.message).toMatch(
      /needs an API key: send "Authorization: Bearer <key>"; create a key with `loupe apikey create`/,
    );
    const forged = await failure(start, { input }, { authorization: 'Bearer loupe_forged' });
    expect(forged).toMatchObject({
      extensions: { code: 'UNAUTHENTICATED' },
      message: expect.stringMatching(/not valid/),
    });

    const created = await runCli(['apikey', 'create', '--name', 'e2e'], env);
    expect(created.code, created.stderr).toBe(0);
    const { key, name } = JSON.parse(created.stdout);
    expect(name).toBe('e2e');
    expect(key).toMatch(/^loupe_[A-Za-z0-9_-]{43}$/);
    const auth = { authorization: `Bearer ${key}` };
    const started = (await ok(start, { input }, auth)).startCapture;
    expect(started).toMatchObject({ hooks: [NEURON_HOOK], totalTokens: 3000 });

    let job = started;
    for (let i = 0; i < 240 && job.status !== 'done' && job.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 250));
      job = (
        await ok('query ($id: ID!) { captureJob(id: $id) { id status phase error } }', { id: started.id })
      ).captureJob;
    }
    expect(job).toMatchObject({ status: 'done', phase: 'done', error: null });
    const missingJob = await failure('{ captureJob(id: "00000000-0000-0000-0000-000000000000") { id } }');
    expect(missingJob.extensions?.code).toBe('NOT_FOUND');

    const record = await client.NeuronRecord({ hook: NEURON_HOOK, neuron: 7 });
    const unit = (await ok(unitQuery, { id })).unit;
    expect(unit).toMatchObject({
      __typename: 'Neuron',
      id,
      model: 'tiny',
      hook: NEURON_HOOK,
      layer: 1,
      index: 7,
      captureJobId: started.id,
      stats: {
        maxActivation: record.maxActivation,
        minActivation: record.minActivation,
        meanActivation: record.meanActivation,
        fractionNonzero: record.fractionNonzero,
        tokens: 3000,
      },
      histogram: { min: record.minActivation, max: record.maxActivation, counts: record.histogram },
      random: { totalCount: record.random.length },
    });
    expect(unit.quantiles.map((q: { from: number; to: number }) => [q.from, q.to])).toEqual(
      record.quantiles.map((q) => [q.from, q.to]),
    );
    // top windows, paged 5 at a time through the cursors, are the service's top windows in order
    const windows = [...unit.top.edges];
    let page = unit.top;
    while (page.pageInfo.hasNextPage) {
      page = (await ok(unitQuery, { id, after: page.pageInfo.endCursor })).unit.top;
      windows.push(...page.edges);
    }
    expect(windows).toHaveLength(record.top.length);
    for (const [i, { node }] of windows.entries()) {
      const want = record.top[i];
      expect(node.window).toBe(Number(want.window));
      expect(node.tokens).toEqual(want.ids.map((tokenId, t) => ({ id: tokenId, text: want.tokens[t] })));
      expect(node.values).toEqual(want.values);
      expect(node.maxValue).toBe(Math.max(...want.values));
    }
    // several units in one request, in the order asked: one ModelInfo and one NeuronRecord per distinct key
    const logStart = gateway.stderr().length;
    const ids = [id, `tiny/${NEURON_HOOK}/3`, id];
    const several = await ok(
      'query ($ids: [ID!]!) { units(ids: $ids) { id stats { maxActivation } ... on Neuron { modelInfo { name } } } }',
      { ids },
    );
    expect(several.units.map((u: { id: string }) => u.id)).toEqual(ids);
    expect(several.units[2].stats.maxActivation).toBe(record.maxActivation);
    await ok('{ model { name } }'); // its batch (key "") is logged after every batch of the request above
    const batches = await logged(logStart, (b) => b.rpc === 'ModelInfo' && b.keys[0] === '');
    expect(batches.slice(0, -1)).toEqual([
      { rpc: 'ModelInfo', keys: ['tiny'] },
      { rpc: 'NeuronRecord', keys: [id, `tiny/${NEURON_HOOK}/3`] },
    ]);
  });

  it('says the capture service is unavailable when it is down, without its address', async () => {
    await capture.stop();
    const down = await failure('{ model { name } }');
    expect(down.extensions).toEqual({ code: 'UNAVAILABLE', reason: 'UNAVAILABLE' });
    expect(down.message).toBe('the capture service is unavailable; try again shortly');
  });
});
