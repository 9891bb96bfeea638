import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { healthCheck } from '../support/health.js';
import { REPO_ROOT } from '../support/process.js';
import { NEURON_HOOK, SAE_HOOK, SAE_ID, type Services, startServices } from '../support/workbench.js';

// A generated corpus of malformed requests against the real processes: GraphQL over HTTP (wrong types,
// oversized strings and lists, invalid UTF-8 and lone surrogates, NaN and infinite numbers, unknown
// ids, deep nesting, malformed bodies, wrong content types) and every gRPC service through raw
// proto-loader clients (built here from the .proto files, not the services' own clients). Every
// request must get a clear error (a stable code and a message that says what was wrong), never an
// internal one, and every service must still be SERVING afterwards.

let services: Services;

beforeAll(async () => {
  services = await startServices();
}, 300_000);

afterAll(async () => {
  await services?.stop();
});

const MAX_TEXT = 100_000; // LOUPE_MAX_TEXT_CHARS' default
const UUID = '0b6f1d8e-2c44-4c1e-9a55-000000000000';
const GRAPHQL_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'NOT_FOUND',
  'UNAUTHENTICATED',
  'QUERY_TOO_DEEP',
  'QUERY_TOO_COSTLY',
  'OPERATION_RESOLUTION_FAILURE',
]);

interface HttpCase {
  name: string;
  /** a GraphQL request, JSON-encoded here */
  gql?: { query: unknown; variables?: unknown; operationName?: string };
  /** or the raw body and its content type */
  raw?: { body: string | Buffer; contentType?: string };
}

const gqlCase = (name: string, query: unknown, variables?: unknown): HttpCase => ({
  name,
  gql: { query, variables },
});
const nested = (depth: number, inner: string) =>
  `${'unit(id: "x") { ... on Feature { nearest(first: 1) { edges { node { '.repeat(depth)}${inner}${' } } } } }'.repeat(depth)}`;
const TOKENIZE = 'query ($t: String!) { tokenize(text: $t) { __typename } }';
const ENCODE = 'query ($n: Int) { encode(text: "hello", saeId: "tiny-res1", perToken: $n) { __typename } }';
const STEER = `query ($s: Float!) { steer(prompt: "hi", edits: [{ unit: "tiny/${SAE_ID}/1", strength: $s }]) { __typename } }`;

const HTTP_CASES: HttpCase[] = [
  // syntax and types
  gqlCase('parse error', '{ unit(id: "x" { id } }'),
  gqlCase('unknown field', '{ nonsense }'),
  gqlCase('wrong literal type', '{ tokenize(text: 5) { __typename } }'),
  gqlCase('wrong variable type', TOKENIZE, { t: 123 }),
  gqlCase('null for a non-null variable', TOKENIZE, { t: null }),
  gqlCase('object for a string', TOKENIZE, { t: { a: 1 } }),
  gqlCase('query is not a string', 5),
  gqlCase('variables are not an object', TOKENIZE, 'text'),
  { name: 'unknown operation name', gql: { query: TOKENIZE, variables: { t: 'a' }, operationName: 'Nope' } },
  // sizes
  gqlCase('empty text', TOKENIZE, { t: '' }),
  gqlCase('text over LOUPE_MAX_TEXT_CHARS', TOKENIZE, { t: 'a'.repeat(MAX_TEXT + 1) }),
  gqlCase('101 units', 'query ($ids: [ID!]!) { units(ids: $ids) { __typename } }', {
    ids: Array.from({ length: 101 }, (_, i) => `tiny/${NEURON_HOOK}/${i}`),
  }),
  gqlCase('100 000 units', 'query ($ids: [ID!]!) { units(ids: $ids) { __typename } }', {
    ids: Array.from({ length: 100_000 }, (_, i) => `tiny/${NEURON_HOOK}/${i}`),
  }),
  gqlCase('9 hooks', 'query ($h: [String!]!) { activations(text: "hi", hooks: $h) { __typename } }', {
    h: Array.from({ length: 9 }, (_, i) => `blocks.${i}.hook_resid_pre`),
  }),
  gqlCase('a page of 10 000', `{ hookUnits(hook: "${NEURON_HOOK}", first: 10000) { __typename } }`),
  gqlCase(
    '300 aliases of 100-item pages (over the cost limit)',
    `{ ${Array.from({ length: 300 }, (_, i) => `a${i}: hookUnits(hook: "${NEURON_HOOK}", first: 100) { edges { node { id } } }`).join(' ')} }`,
  ),
  gqlCase(
    '5000 aliases (over the token limit)',
    `{ ${Array.from({ length: 5_000 }, (_, i) => `a${i}: __typename`).join(' ')} }`,
  ),
  gqlCase('deep nesting past the depth limit', `{ ${nested(12, 'id')} }`),
  gqlCase('nesting 3000 levels', `{ ${nested(3000, 'id')} }`),
  // text that is not Unicode
  gqlCase('a lone high surrogate', TOKENIZE, { t: 'abc\ud800def' }),
  gqlCase('a lone low surrogate', TOKENIZE, { t: '\udc00' }),
  {
    name: 'invalid UTF-8 bytes',
    raw: {
      body: Buffer.concat([
        Buffer.from(`{"query":${JSON.stringify(TOKENIZE)},"variables":{"t":"a`),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28]),
        Buffer.from('"}}'),
      ]),
    },
  },
  // numbers JSON cannot carry: as strings, and as literals that parse to Infinity
  gqlCase('"NaN" for an Int', ENCODE, { n: 'NaN' }),
  gqlCase('"Infinity" for an Int', ENCODE, { n: 'Infinity' }),
  gqlCase('a fraction for an Int', ENCODE, { n: 1.5 }),
  gqlCase('an Int beyond 32 bits', ENCODE, { n: 2 ** 40 }),
  gqlCase('a negative count', ENCODE, { n: -1 }),
  gqlCase('"NaN" for a Float', STEER, { s: 'NaN' }),
  { name: '1e309 for a Float', raw: { body: `{"query":${JSON.stringify(STEER)},"variables":{"s":1e309}}` } },
  {
    name: '-1e309 for an Int',
    raw: { body: `{"query":${JSON.stringify(ENCODE)},"variables":{"n":-1e309}}` },
  },
  // unknown ids
  gqlCase('unit id without parts', '{ unit(id: "nonsense") { id } }'),
  gqlCase('unknown hook', '{ unit(id: "tiny/blocks.99.mlp.hook_post/1") { id } }'),
  gqlCase('unknown model', `{ unit(id: "nope/${NEURON_HOOK}/1") { id } }`),
  gqlCase('neuron index out of range', `{ unit(id: "tiny/${NEURON_HOOK}/99999999") { id } }`),
  gqlCase('negative index', `{ unit(id: "tiny/${NEURON_HOOK}/-1") { id } }`),
  gqlCase('unknown SAE', '{ sae(id: "no-such-sae") { id } }'),
  gqlCase('feature index out of range', `{ unit(id: "tiny/${SAE_ID}/100000") { id } }`),
  gqlCase('capture job id not a uuid', '{ captureJob(id: "x") { id } }'),
  gqlCase('unknown capture job', `{ captureJob(id: "${UUID}") { id } }`),
  gqlCase('unknown training job', `{ trainingJob(id: "${UUID}") { id } }`),
  gqlCase('unknown scoring job', `{ scoringJob(id: "${UUID}") { id } }`),
  gqlCase('encode with an unknown SAE', '{ encode(text: "hi", saeId: "nope") { __typename } }'),
  gqlCase(
    'a NUL character in an explanation search',
    'query ($q: String!) { searchExplanations(query: $q) { __typename } }',
    { q: 'river\u0000bank' },
  ),
  gqlCase(
    'steer an unknown unit',
    '{ steer(prompt: "hi", edits: [{ unit: "tiny/nope/1", strength: 1 }]) { __typename } }',
  ),
  gqlCase(
    'mutation without an API key',
    `mutation { explain(unit: "tiny/${NEURON_HOOK}/1") { __typename } }`,
  ),
  // bodies and content types
  { name: 'malformed JSON', raw: { body: '{"query": "{ __typename }"' } },
  { name: 'JSON that is not an object', raw: { body: '"{ __typename }"' } },
  {
    name: 'a batch (not supported)',
    raw: { body: '[{"query":"{ __typename }"},{"query":"{ __typename }"}]' },
  },
  { name: 'empty body', raw: { body: '' } },
  { name: 'text/plain', raw: { body: '{"query":"{ __typename }"}', contentType: 'text/plain' } },
  { name: 'application/xml', raw: { body: '<query/>', contentType: 'application/xml' } },
  {
    name: 'form encoded',
    raw: { body: 'query=%7B__typename%7D', contentType: 'application/x-www-form-urlencoded' },
  },
  { name: 'a body over the size limit', raw: { body: `{"query":"${'a'.repeat(8 * 1024 * 1024)}"}` } },
  {
    name: 'deeply nested JSON',
    // a String variable given an object nested 20 000 levels deep
    raw: {
      body: `{"query":${JSON.stringify(TOKENIZE)},"variables":{"t":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}}`,
    },
  },
];

async function send(c: HttpCase): Promise<{ status: number; text: string }> {
  const body = c.gql ? JSON.stringify(c.gql) : c.raw!.body;
  const response = await fetch(services.gatewayUrl, {
    method: 'POST',
    headers: { 'content-type': c.raw?.contentType ?? 'application/json' },
    body,
  });
  return { status: response.status, text: await response.text() };
}

describe('GraphQL: every malformed request gets a clear error', () => {
  it.each(HTTP_CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const { status, text } = await send(c);
    expect(status, text.slice(0, 300)).toBeLessThan(500);
    const body = JSON.parse(text) as { errors?: { message: string; extensions?: { code?: string } }[] };
    expect(body.errors?.length, text.slice(0, 300)).toBeGreaterThan(0);
    const [error] = body.errors!;
    expect(GRAPHQL_CODES.has(error.extensions?.code ?? ''), text.slice(0, 300)).toBe(true);
    expect(error.message.length).toBeGreaterThan(5);
    expect(error.message).not.toMatch(/internal error|stack|at [A-Za-z]+ \(/);
  });

  it("the gateway still answers, and logged the users' mistakes as one-liners, not as errors with stacks", async () => {
    expect(await services.gql('{ __typename }')).toEqual({ __typename: 'Query' });
    const health = await fetch(services.gatewayUrl.replace('/graphql', '/healthz'));
    expect(health.status).toBe(200);
    const log = services.gatewayLog();
    expect(log).toContain('request refused');
    expect(log).not.toContain('ExceptionsHandler');
    expect(log).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  });
});

// ---- gRPC ----

type RawClient = grpc.Client & Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>;

/** A client of loupe.v1.<Service> built from its .proto with plain proto-loader options. */
function rawClient(proto: string, service: string, address: string): RawClient {
  const definition = protoLoader.loadSync(path.join(REPO_ROOT, `proto/loupe/v1/${proto}.proto`), {
    includeDirs: [path.join(REPO_ROOT, 'proto')],
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    loupe: { v1: Record<string, new (a: string, c: grpc.ChannelCredentials, o: object) => RawClient> };
  };
  const limit = 64 * 1024 * 1024;
  return new loaded.loupe.v1[service](address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': limit,
    'grpc.max_receive_message_length': limit,
  });
}

function call(client: RawClient, method: string, request: unknown): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    client[method](request, { deadline: Date.now() + 60_000 }, (error: grpc.ServiceError | null) =>
      resolve(error),
    );
  });
}

/** Bytes that are not the request message: a wire type the field does not have, a truncated length. */
function rawCall(client: RawClient, method: string, bytes: Buffer): Promise<grpc.ServiceError | null> {
  const servicePath = Object.values(
    (client.constructor as unknown as { service: Record<string, { path: string; originalName: string }> })
      .service,
  ).find((m) => m.originalName === method || m.path.endsWith(`/${method}`))!.path;
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      servicePath,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      { deadline: Date.now() + 60_000 },
      (error) => resolve(error),
    );
  });
}

const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);
const tensor = (shape: number[], values: number[]) => ({ shape, dtype: 'F32', data: f32(values) });
const big = 'word '.repeat(MAX_TEXT / 5 + 10);
const D = 64;
const nanVector = Array.from({ length: D }, (_, i) => (i === 3 ? Number.NaN : 0.1));
const infVector = Array.from({ length: D }, () => Number.POSITIVE_INFINITY);

type GrpcCase = [name: string, method: string, request: unknown];
const CAPTURE_CASES: GrpcCase[] = [
  ['tokenize empty text', 'Tokenize', { text: '' }],
  ['tokenize text over the limit', 'Tokenize', { text: big }],
  ['tokenize unknown model', 'Tokenize', { text: 'hi', model: 'no-such-model' }],
  ['activations without hooks', 'Activations', { text: 'hi', hooks: [] }],
  ['activations unknown hook', 'Activations', { text: 'hi', hooks: ['blocks.99.hook_resid_pre'] }],
  [
    'activations 10 000 hooks',
    'Activations',
    { text: 'hi', hooks: Array.from({ length: 10_000 }, (_, i) => `h${i}`) },
  ],
  ['activations token id out of vocabulary', 'Activations', { ids: { ids: [1e9] }, hooks: [SAE_HOOK] }],
  ['activations negative token id', 'Activations', { ids: { ids: [-1] }, hooks: [SAE_HOOK] }],
  ['activations no input', 'Activations', { hooks: [SAE_HOOK] }],
  [
    'steering vector of the wrong width',
    'Activations',
    { text: 'hi', hooks: [SAE_HOOK], steering: [{ hook: SAE_HOOK, vector: [1, 2] }] },
  ],
  [
    'steering vector with NaN',
    'Activations',
    { text: 'hi', hooks: [SAE_HOOK], steering: [{ hook: SAE_HOOK, vector: nanVector }] },
  ],
  [
    'steering vector of infinities',
    'Activations',
    { text: 'hi', hooks: [SAE_HOOK], steering: [{ hook: SAE_HOOK, vector: infVector }] },
  ],
  [
    'steering strength NaN',
    'Activations',
    {
      text: 'hi',
      hooks: [SAE_HOOK],
      steering: [{ hook: SAE_HOOK, vector: nanVector.map(() => 1), strength: Number.NaN }],
    },
  ],
  [
    'clamp with empty vectors',
    'Activations',
    { text: 'hi', hooks: [SAE_HOOK], clamps: [{ hook: SAE_HOOK, value: 1 }] },
  ],
  ['generate NaN temperature', 'Generate', { prompt: 'hi', maxTokens: 2, temperature: Number.NaN }],
  [
    'generate infinite temperature',
    'Generate',
    { prompt: 'hi', maxTokens: 2, temperature: Number.POSITIVE_INFINITY },
  ],
  ['generate a million tokens', 'Generate', { prompt: 'hi', maxTokens: 1_000_000 }],
  ['generate negative tokens', 'Generate', { prompt: 'hi', maxTokens: -3 }],
  [
    'start capture 0 tokens',
    'StartCapture',
    { model: 'tiny', dataset: 'default', hooks: [NEURON_HOOK], maxTokens: 0 },
  ],
  [
    'start capture outside the data dir',
    'StartCapture',
    { model: 'tiny', dataset: '../../../etc/passwd', hooks: [NEURON_HOOK], maxTokens: 10 },
  ],
  [
    'start capture unknown hook',
    'StartCapture',
    { model: 'tiny', dataset: 'default', hooks: ['nope'], maxTokens: 10 },
  ],
  ['capture job id not a uuid', 'GetCaptureJob', { id: 'x' }],
  ['unknown capture job', 'GetCaptureJob', { id: UUID }],
  ['neuron record negative', 'NeuronRecord', { model: 'tiny', hook: NEURON_HOOK, neuron: -1 }],
  ['neuron record out of range', 'NeuronRecord', { model: 'tiny', hook: NEURON_HOOK, neuron: 2 ** 31 - 1 }],
  ['neuron record unknown hook', 'NeuronRecord', { model: 'tiny', hook: 'x', neuron: 1 }],
  ['list neurons negative offset', 'ListNeurons', { model: 'tiny', hook: NEURON_HOOK, offset: -5 }],
  ['list neurons unknown order', 'ListNeurons', { model: 'tiny', hook: NEURON_HOOK, orderBy: 'DROP TABLE' }],
  ['search an unknown collection', 'SearchDocuments', { collection: 'nope', query: 'hi', k: 5 }],
  ['search with k = 1e9', 'SearchDocuments', { collection: 'shop', query: 'hi', k: 1e9 }],
  ['index no documents', 'IndexDocuments', { collection: 'c', hook: SAE_HOOK, documents: { documents: [] } }],
  ['unknown collection', 'GetCollection', { collection: 'nope' }],
];
const SAE_CASES: GrpcCase[] = [
  ['unknown SAE', 'GetSae', { id: 'nope' }],
  ['encode unknown SAE', 'Encode', { saeId: 'nope', text: 'hi' }],
  ['encode empty text', 'Encode', { saeId: SAE_ID, text: '' }],
  ['encode text over the limit', 'Encode', { saeId: SAE_ID, text: big }],
  ['encode per_token negative', 'Encode', { saeId: SAE_ID, text: 'hi', perToken: -1 }],
  ['encode top 1e9', 'Encode', { saeId: SAE_ID, text: 'hi', top: 1e9 }],
  ['decode NaN value', 'Decode', { saeId: SAE_ID, features: [{ feature: 1, value: Number.NaN }] }],
  [
    'decode infinite value',
    'Decode',
    { saeId: SAE_ID, features: [{ feature: 1, value: Number.POSITIVE_INFINITY }] },
  ],
  ['decode feature out of range', 'Decode', { saeId: SAE_ID, features: [{ feature: 1e6, value: 1 }] }],
  ['decode negative feature', 'Decode', { saeId: SAE_ID, features: [{ feature: -1, value: 1 }] }],
  [
    'decode 1 000 000 features',
    'Decode',
    { saeId: SAE_ID, features: Array.from({ length: 1_000_000 }, () => ({ feature: 1, value: 1 })) },
  ],
  ['nearest to an empty tensor', 'NearestFeatures', { saeId: SAE_ID, vector: tensor([0], []), k: 5 }],
  ['nearest to a NaN vector', 'NearestFeatures', { saeId: SAE_ID, vector: tensor([D], nanVector), k: 5 }],
  [
    'nearest to an infinite vector',
    'NearestFeatures',
    { saeId: SAE_ID, vector: tensor([D], infVector), k: 5 },
  ],
  [
    'nearest to the zero vector',
    'NearestFeatures',
    { saeId: SAE_ID, vector: tensor([D], new Array(D).fill(0)), k: 5 },
  ],
  [
    'nearest: shape and data disagree',
    'NearestFeatures',
    { saeId: SAE_ID, vector: tensor([1_000_000], [1, 2, 3]), k: 5 },
  ],
  [
    'nearest: huge shape',
    'NearestFeatures',
    { saeId: SAE_ID, vector: tensor([2 ** 40, 2 ** 40], [1]), k: 5 },
  ],
  [
    'nearest: unknown dtype',
    'NearestFeatures',
    { saeId: SAE_ID, vector: { shape: [D], dtype: 'Q7', data: f32(nanVector) }, k: 5 },
  ],
  [
    'nearest: data not a whole number of floats',
    'NearestFeatures',
    { saeId: SAE_ID, vector: { shape: [D], dtype: 'F32', data: Buffer.alloc(D * 4 + 1) }, k: 5 },
  ],
  ['nearest: k = 1e9', 'NearestFeatures', { saeId: SAE_ID, feature: 1, k: 1e9 }],
  ['nearest: feature out of range', 'NearestFeatures', { saeId: SAE_ID, feature: 99_999, k: 5 }],
  ['feature records negative', 'FeatureRecords', { saeId: SAE_ID, feature: -1 }],
  ['feature stats out of range', 'FeatureStats', { saeId: SAE_ID, feature: 1e6 }],
  ['feature weights out of range', 'FeatureWeights', { saeId: SAE_ID, feature: 1e6 }],
  [
    'train width 0',
    'Train',
    { activationsFile: 'x.safetensors', hook: SAE_HOOK, architecture: 'topk', width: 0, steps: 10 },
  ],
  [
    'train NaN learning rate',
    'Train',
    {
      activationsFile: 'x.safetensors',
      hook: SAE_HOOK,
      architecture: 'topk',
      width: 8,
      steps: 10,
      lr: Number.NaN,
    },
  ],
  [
    'train infinite sparsity',
    'Train',
    {
      activationsFile: 'x.safetensors',
      hook: SAE_HOOK,
      architecture: 'relu',
      width: 8,
      steps: 10,
      sparsity: Number.POSITIVE_INFINITY,
    },
  ],
  [
    'train unknown architecture',
    'Train',
    { activationsFile: 'x.safetensors', hook: SAE_HOOK, architecture: 'magic', width: 8, steps: 10 },
  ],
  [
    'train from outside the data dir',
    'Train',
    { activationsFile: '/etc/passwd', hook: SAE_HOOK, architecture: 'topk', width: 8, steps: 10 },
  ],
  [
    'train from an unknown capture job',
    'Train',
    { captureJobId: UUID, hook: SAE_HOOK, architecture: 'topk', width: 8, steps: 10 },
  ],
  ['training job id not a uuid', 'GetTrainingJob', { id: 'x' }],
  ['evaluate unknown SAE', 'Evaluate', { saeId: 'nope', captureJobId: UUID }],
];
const EXPLAINER_CASES: GrpcCase[] = [
  ['explain an unknown unit', 'Explain', { unit: 'nope' }],
  ['explain 1e6 candidates', 'Explain', { unit: `tiny/${NEURON_HOOK}/1`, candidates: 1e6 }],
  ['simulate an empty explanation', 'Simulate', { explanation: '', sequences: [] }],
  ['simulate a huge explanation', 'Simulate', { explanation: big, sequences: [] }],
  [
    'score with an unknown method',
    'Score',
    { unit: `tiny/${NEURON_HOOK}/1`, explanation: 'x', method: 'magic' },
  ],
  [
    'score with an LLM at a file: URL',
    'Score',
    {
      unit: `tiny/${NEURON_HOOK}/1`,
      explanation: 'x',
      method: 'detection',
      llm: { baseUrl: 'file:///etc/passwd' },
    },
  ],
  ['job with garbage units', 'StartScoringJob', { units: 'garbage', method: 'detection' }],
  [
    'job with a billion units',
    'StartScoringJob',
    { units: `tiny/${NEURON_HOOK}/0-999999999`, method: 'detection' },
  ],
  [
    'job with negative concurrency',
    'StartScoringJob',
    { units: `tiny/${NEURON_HOOK}/0-1`, method: 'detection', concurrency: -1 },
  ],
  [
    'job with negative budget',
    'StartScoringJob',
    { units: `tiny/${NEURON_HOOK}/0-1`, method: 'detection', budgetTokens: -5 },
  ],
  ['job id not a uuid', 'GetJob', { id: 'x' }],
  ['unknown job', 'GetJob', { id: UUID }],
  ['cancel an unknown job', 'CancelJob', { id: UUID }],
  ['search a huge query', 'SearchExplanations', { query: big }],
  ['search with a negative limit', 'SearchExplanations', { query: 'x', limit: -1 }],
  ['search with a NUL character', 'SearchExplanations', { query: 'river\u0000bank' }],
];

const CLEAR = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND, grpc.status.FAILED_PRECONDITION]);

describe.each([
  ['capture', 'CaptureService', 'LOUPE_CAPTURE_ADDR', CAPTURE_CASES, 'Tokenize'],
  ['sae', 'SaeService', 'LOUPE_SAE_ADDR', SAE_CASES, 'Encode'],
  ['explainer', 'ExplainerService', 'LOUPE_EXPLAINER_ADDR', EXPLAINER_CASES, 'Score'],
] as const)(
  'gRPC %s: every malformed request gets INVALID_ARGUMENT or NOT_FOUND with a message',
  (proto, service, addressVar, cases, rawMethod) => {
    let client: RawClient;
    beforeAll(() => {
      client = rawClient(proto, service, services.env[addressVar]);
    });
    afterAll(() => client?.close());

    it.each(cases)('%s', async (_, method, request) => {
      const error = await call(client, method, request);
      expect(error, 'the request was accepted').not.toBeNull();
      expect(CLEAR.has(error!.code), `${grpc.status[error!.code]}: ${error!.details}`).toBe(true);
      expect(error!.details.length).toBeGreaterThan(5);
      expect(error!.details).not.toMatch(/internal error/);
    });

    it('bytes that are not a message leave the service SERVING', async () => {
      // bytes that are not a well-formed message: answered either way (protobuf decoding is lenient),
      // what matters is that the process stays up and healthy
      for (const bytes of [
        Buffer.from([0x10, 0x05]),
        Buffer.from([0x12, 0x7f, 0x61]),
        Buffer.from([0xff, 0xff, 0xff]),
        Buffer.alloc(0),
      ])
        await rawCall(client, rawMethod, bytes);
      expect(await healthCheck(services.env[addressVar])).toEqual({ status: 'SERVING' });
    });
  },
);
