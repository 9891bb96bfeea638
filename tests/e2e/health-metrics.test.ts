import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { convertedFixture } from '../support/model.js';
import { freePort, REPO_ROOT, type RunningProcess, startProcess } from '../support/process.js';

// The compiled services as real processes, probed the way Kubernetes and Prometheus would: the
// standard gRPC health service on each gRPC port, GET /healthz, /readyz and /metrics over HTTP, and
// one request id followed from the gateway's log into the capture service's log.

let scratch: string;
let db: TestDatabase;
let capture: RunningProcess;
let sae: RunningProcess;
let explainer: RunningProcess;
let gateway: RunningProcess;
let addresses: { capture: string; sae: string; explainer: string };
let metricsPorts: { capture: number; sae: number; explainer: number };
let gatewayBase: string;

type HealthClient = grpc.Client & {
  Check(
    request: { service: string },
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, response?: { status: string }) => void,
  ): void;
};

/** A client of grpc.health.v1.Health built here from the .proto, independent of the services' code. */
function healthClient(address: string): HealthClient {
  const definition = protoLoader.loadSync(path.join(REPO_ROOT, 'proto/grpc/health/v1/health.proto'), {
    enums: String,
    defaults: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { health: { v1: { Health: new (a: string, c: grpc.ChannelCredentials) => HealthClient } } };
  };
  return new loaded.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
}

function check(address: string, service = ''): Promise<{ status?: string; code?: grpc.status }> {
  const client = healthClient(address);
  return new Promise((resolve) => {
    client.Check({ service }, { deadline: Date.now() + 5_000 }, (error, response) => {
      client.close();
      resolve(error ? { code: error.code } : { status: response?.status });
    });
  });
}

/** Polls `probe` until it gives `want` (services start and load their model at their own pace). */
async function until<T>(probe: () => Promise<T>, want: (value: T) => boolean, what: string): Promise<T> {
  let last: T | undefined;
  for (let i = 0; i < 600; i++) {
    last = await probe();
    if (want(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: last ${JSON.stringify(last)}\n${gateway.stderr().slice(-2000)}`);
}

async function get(url: string, headers: Record<string, string> = {}) {
  try {
    const response = await fetch(url, { headers });
    return { status: response.status, body: await response.text(), headers: response.headers };
  } catch (error) {
    return { status: 0, body: String(error), headers: new Headers() };
  }
}

/** The value of one sample of Prometheus text: `name{…labels…} value`, 0 when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return 0;
}

async function graphql(query: string, variables: Record<string, unknown>, requestId: string) {
  const response = await fetch(`${gatewayBase}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Record<string, unknown>; errors?: unknown[] };
  expect(body.errors, JSON.stringify(body)).toBeUndefined();
  return { data: body.data as Record<string, never>, echoed: response.headers.get('x-request-id') };
}

/** JSON log lines of a process that carry `requestId`. */
function linesWith(process: RunningProcess, requestId: string): Record<string, unknown>[] {
  return process
    .stderr()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.requestId === requestId);
}

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-health-'));
  const dataDir = path.join(scratch, 'data');
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  await fs.mkdir(path.join(dataDir, 'models'), { recursive: true });
  await fs.rename(modelDir, path.join(dataDir, 'models', 'tiny'));
  db = await startTestDatabase();
  addresses = {
    capture: `127.0.0.1:${await freePort()}`,
    sae: `127.0.0.1:${await freePort()}`,
    explainer: `127.0.0.1:${await freePort()}`,
  };
  metricsPorts = { capture: await freePort(), sae: await freePort(), explainer: await freePort() };
  const gatewayPort = await freePort();
  gatewayBase = `http://127.0.0.1:${gatewayPort}`;
  const env = {
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: 'tiny',
    LOUPE_CAPTURE_ADDR: addresses.capture,
    LOUPE_SAE_ADDR: addresses.sae,
    LOUPE_EXPLAINER_ADDR: addresses.explainer,
    LOUPE_GATEWAY_PORT: String(gatewayPort),
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    ...databaseEnv(db),
    LOUPE_LLM_BASE_URL: '',
    LOUPE_EMBEDDINGS_BASE_URL: '',
    // debug: each served RPC is logged, which is what the request-id test reads
    LOUPE_LOG_LEVEL: 'debug',
  };
  capture = startProcess('services/capture/dist/main.js', {
    ...env,
    LOUPE_METRICS_PORT: String(metricsPorts.capture),
  });
  sae = startProcess('services/sae/dist/main.js', { ...env, LOUPE_METRICS_PORT: String(metricsPorts.sae) });
  explainer = startProcess('services/explainer/dist/main.js', {
    ...env,
    LOUPE_METRICS_PORT: String(metricsPorts.explainer),
  });
  gateway = startProcess('services/gateway/dist/bin.js', env);
}, 120_000);

afterAll(async () => {
  await gateway?.stop();
  await Promise.all([capture?.stop(), sae?.stop(), explainer?.stop()]);
  await db?.stop();
  await fs.rm(scratch, { recursive: true, force: true });
});

describe('health, readiness, metrics and request ids across real processes', () => {
  it('every gRPC service answers the standard health check: SERVING once ready, NOT_FOUND for others', async () => {
    for (const [name, service] of [
      ['capture', 'loupe.v1.CaptureService'],
      ['sae', 'loupe.v1.SaeService'],
      ['explainer', 'loupe.v1.ExplainerService'],
    ] as const) {
      const address = addresses[name];
      await until(
        () => check(address),
        (r) => r.status === 'SERVING',
        `${name} health`,
      );
      expect(await check(address, service)).toEqual({ status: 'SERVING' });
      expect(await check(address, 'loupe.v1.NoSuchService')).toEqual({ code: grpc.status.NOT_FOUND });
      const ready = await get(`http://127.0.0.1:${metricsPorts[name]}/readyz`);
      expect(ready.status, ready.body).toBe(200);
      expect((await get(`http://127.0.0.1:${metricsPorts[name]}/healthz`)).status).toBe(200);
    }
  }, 90_000);

  it('the gateway answers /healthz and /readyz once the capture service serves', async () => {
    const healthz = await until(
      () => get(`${gatewayBase}/healthz`),
      (r) => r.status === 200,
      '/healthz',
    );
    expect(JSON.parse(healthz.body)).toEqual({ status: 'ok' });
    const readyz = await until(
      () => get(`${gatewayBase}/readyz`),
      (r) => r.status === 200,
      '/readyz',
    );
    expect(JSON.parse(readyz.body)).toEqual({ status: 'ready', reasons: {} });
  }, 90_000);

  it('counts RPCs, GraphQL operations and tokens, and names the execution provider', async () => {
    const text = 'The quick brown fox jumps over the lazy dog';
    const metricsUrl = `http://127.0.0.1:${metricsPorts.capture}/metrics`;
    const before = (await get(metricsUrl)).body;
    const rpc = { service: 'loupe.v1.CaptureService', method: 'Activations', code: 'OK' };
    const tokens = { service: 'capture', model: 'tiny' };

    const { data } = await graphql(
      'query Hooked($text: String!) { tokenize(text: $text) { tokens { id } } activations(text: $text, hooks: ["blocks.0.hook_resid_pre"]) { tokens { id } } }',
      { text },
      'metrics-probe',
    );
    const tokenCount = (data.tokenize as { tokens: unknown[] }).tokens.length;
    expect(tokenCount).toBeGreaterThan(5);

    const after = (await get(metricsUrl)).body;
    expect(after).toMatch(/# TYPE loupe_rpc_duration_seconds histogram/);
    expect(sample(after, 'loupe_rpc_duration_seconds_count', rpc)).toBe(
      sample(before, 'loupe_rpc_duration_seconds_count', rpc) + 1,
    );
    // the histogram's +Inf bucket holds every call, like its count
    expect(sample(after, 'loupe_rpc_duration_seconds_bucket', { ...rpc, le: '+Inf' })).toBe(
      sample(after, 'loupe_rpc_duration_seconds_count', rpc),
    );
    expect(sample(after, 'loupe_tokens_processed_total', tokens)).toBe(
      sample(before, 'loupe_tokens_processed_total', tokens) + tokenCount,
    );
    expect(sample(after, 'loupe_onnx_execution_provider', { service: 'capture', provider: 'cpu' })).toBe(1);
    expect(sample(after, 'loupe_onnx_execution_provider', { service: 'capture', provider: 'cuda' })).toBe(0);

    const gatewayMetrics = (await get(`${gatewayBase}/metrics`)).body;
    expect(
      sample(gatewayMetrics, 'loupe_graphql_duration_seconds_count', {
        operation: 'Hooked',
        type: 'query',
        outcome: 'ok',
      }),
    ).toBe(1);
  }, 60_000);

  it('one x-request-id shows in the gateway’s and the capture service’s JSON log lines', async () => {
    const requestId = `trace-${Date.now()}`;
    const { echoed } = await graphql(
      'query ($text: String!) { tokenize(text: $text) { tokens { id } } }',
      { text: 'request ids travel as gRPC metadata' },
      requestId,
    );
    expect(echoed).toBe(requestId);
    const captureLines = await until(
      async () => linesWith(capture, requestId),
      (lines) => lines.length > 0,
      'capture log line with the request id',
    );
    expect(captureLines[0]).toMatchObject({ service: 'capture', rpc: '/loupe.v1.CaptureService/Tokenize' });
    expect(linesWith(gateway, requestId).length).toBeGreaterThan(0);
    // an id that could forge log fields is replaced, not logged
    const forged = await fetch(`${gatewayBase}/healthz`, { headers: { 'x-request-id': 'a"b\\c' } });
    expect(forged.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  }, 60_000);

  it('/readyz turns 503 with the reason when the capture service goes down', async () => {
    await capture.stop();
    const readyz = await until(
      () => get(`${gatewayBase}/readyz`),
      (r) => r.status === 503,
      '/readyz 503',
    );
    const body = JSON.parse(readyz.body);
    expect(body.status).toBe('not ready');
    expect(body.reasons.gateway).toMatch(new RegExp(`capture: ${addresses.capture} unreachable`));
    // the gateway itself is still alive
    expect((await get(`${gatewayBase}/healthz`)).status).toBe(200);
  }, 60_000);
});
