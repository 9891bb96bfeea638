import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { captureServiceClient, explainerServiceClient } from '@loupe/common/grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { healthCheck, until } from '../support/health.js';
import { convertedFixture } from '../support/model.js';
import { freePort, type RunningProcess, startProcess } from '../support/process.js';

// The security settings on real processes: the shared service token between gRPC services, per-key
// rate limits and CORS in the gateway, and secrets (LLM key, hub token, service token) that never
// reach a log line, even at debug level and with failing LLM calls.

const SECRETS = {
  LOUPE_LLM_API_KEY: 'sk-test-llm-key-never-logged-8c1f',
  HF_TOKEN: 'hf_test_token_never_logged_77a2',
  LOUPE_SERVICE_TOKEN: 'service-token-never-logged-41d9',
};
const ALLOWED_ORIGIN = 'https://workbench.example';

let scratch: string;
let env: Record<string, string>;
let gatewayUrl: string;
const processes: RunningProcess[] = [];
let db: TestDatabase;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-security-'));
  const dataDir = path.join(scratch, 'data');
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  await fs.mkdir(path.join(dataDir, 'models'), { recursive: true });
  await fs.rename(modelDir, path.join(dataDir, 'models', 'tiny'));
  const gatewayPort = await freePort();
  db = await startTestDatabase();
  env = {
    ...SECRETS,
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: 'tiny',
    ...databaseEnv(db),
    LOUPE_CAPTURE_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_SAE_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_EXPLAINER_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_GATEWAY_PORT: String(gatewayPort),
    LOUPE_GATEWAY_RATE_LIMIT: '1',
    LOUPE_GATEWAY_CORS_ORIGINS: `${ALLOWED_ORIGIN}, https://other.example`,
    // an LLM server that is not there: calls with the key fail, and the failures are logged
    LOUPE_LLM_BASE_URL: `http://127.0.0.1:${await freePort()}/v1`,
    LOUPE_LLM_TIMEOUT_MS: '2000',
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    LOUPE_LOG_LEVEL: 'debug',
  };
  for (const entry of ['capture/dist/main.js', 'explainer/dist/main.js', 'gateway/dist/bin.js'])
    processes.push(startProcess(`services/${entry}`, env));
  gatewayUrl = `http://127.0.0.1:${gatewayPort}/graphql`;
  await until(
    () => healthCheck(env.LOUPE_CAPTURE_ADDR),
    (h) => h.status === 'SERVING',
    'capture',
  );
  await until(
    () =>
      fetch(gatewayUrl.replace('/graphql', '/healthz')).then(
        (r) => r.status,
        () => 0,
      ),
    (s) => s === 200,
    'gateway',
  );
}, 180_000);

afterAll(async () => {
  for (const p of processes.reverse()) await p.stop();
  await db?.stop();
  await fs.rm(scratch, { recursive: true, force: true });
});

function unaryError(promise: Promise<unknown>): Promise<grpc.ServiceError | null> {
  return promise.then(
    () => null,
    (error: grpc.ServiceError) => error,
  );
}

describe('the shared service token', () => {
  it('refuses calls without it or with another one, with UNAUTHENTICATED and a message', async () => {
    for (const serviceToken of ['', 'wrong-token']) {
      const client = captureServiceClient(env.LOUPE_CAPTURE_ADDR, { serviceToken });
      const error = await unaryError(client.Tokenize({ model: '', text: 'hello' }));
      client.close();
      expect(error?.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(error?.details).toMatch(/LOUPE_SERVICE_TOKEN/);
    }
  });

  it('serves callers that send it, and health checks without it', async () => {
    const client = captureServiceClient(env.LOUPE_CAPTURE_ADDR, {
      serviceToken: SECRETS.LOUPE_SERVICE_TOKEN,
    });
    const answer = await client.Tokenize({ model: '', text: 'hello' });
    client.close();
    expect(answer.tokens.length).toBeGreaterThan(0);
    expect(await healthCheck(env.LOUPE_CAPTURE_ADDR)).toEqual({ status: 'SERVING' });
    expect(await healthCheck(env.LOUPE_EXPLAINER_ADDR)).toEqual({ status: 'SERVING' });
  });

  it('is sent by the gateway, whose reads reach the capture service', async () => {
    const response = await fetch(gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer token-for-this-test-only' },
      body: JSON.stringify({ query: '{ tokenize(text: "hello") { __typename } }' }),
    });
    expect(await response.json()).toEqual({ data: { tokenize: { __typename: 'Tokenization' } } });
  });
});

describe('the gateway', () => {
  const post = (headers: Record<string, string> = {}) =>
    fetch(gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: '{"query":"{ __typename }"}',
    });

  it('limits each key to its rate: RATE_LIMITED with Retry-After beyond the burst, other keys unaffected', async () => {
    // LOUPE_GATEWAY_RATE_LIMIT=1: a burst of 2, then one per second; 12 requests at once exceed it
    const answers = await Promise.all(Array.from({ length: 12 }, () => post()));
    const limited = answers.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0].headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await limited[0].json()).errors[0]).toMatchObject({
      extensions: { code: 'RATE_LIMITED' },
      message: expect.stringMatching(/rate limit exceeded.*LOUPE_GATEWAY_RATE_LIMIT/),
    });
    // another key has its own bucket
    const other = await post({ authorization: 'Bearer another-key-for-this-test' });
    expect(other.status).toBe(200);
  });

  it('answers CORS preflights for configured origins only', async () => {
    const preflight = (origin: string) =>
      fetch(gatewayUrl, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      });
    const allowed = await preflight(ALLOWED_ORIGIN);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ALLOWED_ORIGIN);
    const other = await preflight('https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('secrets', () => {
  it('never appear in any log, also when calls that use them fail', async () => {
    const explainer = explainerServiceClient(env.LOUPE_EXPLAINER_ADDR, {
      serviceToken: SECRETS.LOUPE_SERVICE_TOKEN,
    });
    // the LLM server is down: the key is sent nowhere and the failure is logged
    const error = await unaryError(
      explainer.Simulate({ explanation: 'words about the sea', sequences: [{ tokens: ['the', ' sea'] }] }),
    );
    explainer.close();
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    const wrong = captureServiceClient(env.LOUPE_CAPTURE_ADDR, { serviceToken: 'wrong-token' });
    await unaryError(wrong.Tokenize({ model: '', text: 'x' }));
    wrong.close();
    const logs = processes.map((p) => p.stderr()).join('\n');
    expect(logs.length).toBeGreaterThan(1000); // debug logs of three processes were written
    for (const [name, secret] of Object.entries(SECRETS)) expect(logs.includes(secret), name).toBe(false);
  }, 120_000);
});
