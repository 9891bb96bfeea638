import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type ExplainerProto, explainerServiceClient, type GrpcTls, loadProto } from '@loupe/common/grpc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { healthCheck, until } from '../support/health.js';
import { type LlmServer, startLlmServer } from '../support/llm-server.js';
import { freePort, type RunningProcess, startProcess } from '../support/process.js';

// One real explainer process (the cheapest service: no model, the suite's database) with
// LOUPE_GRPC_TLS_* set: only clients holding a certificate from the configured CA get through, the
// process stays up for everyone else's failed handshakes, and its /readyz is unaffected. The same
// process has LLM prices configured, so its /metrics also shows loupe_llm_cost_usd_total for calls
// to a local LLM server that reports known usage.

const PRICE_PROMPT = 2.5; // $ per million prompt tokens
const PRICE_COMPLETION = 10; // $ per million completion tokens
const USAGE = { prompt_tokens: 1000, completion_tokens: 200 };
// by hand: 1000 × 2.5 / 1e6 + 200 × 10 / 1e6 = 0.0025 + 0.002
const COST_PER_CALL = 0.0045;

let scratch: string;
let db: TestDatabase;
let explainer: RunningProcess;
let llm: LlmServer;
let address: string;
let metricsPort: number;
let certs: Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string>;
let otherCa: { clientCert: string; clientKey: string };

function openssl(cwd: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A key and a certificate for `cn` signed by the CA in `dir`, with `extensions` (x509v3 lines). */
function issue(dir: string, cn: string, extensions: string): { cert: string; key: string } {
  const key = path.join(dir, `${cn}.key`);
  const csr = path.join(dir, `${cn}.csr`);
  const cert = path.join(dir, `${cn}.pem`);
  const ext = path.join(dir, `${cn}.ext`);
  writeFileSync(ext, `${extensions}\n`);
  openssl(
    dir,
    ...['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', key, '-out', csr, '-subj', `/CN=${cn}`],
  );
  openssl(
    dir,
    ...['x509', '-req', '-in', csr, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(Date.now())],
    ...['-days', '1', '-out', cert, '-extfile', ext],
  );
  return { cert, key };
}

async function caDir(name: string): Promise<string> {
  const dir = path.join(scratch, name);
  await fs.mkdir(dir);
  openssl(
    dir,
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', `/CN=${name}`],
  );
  return dir;
}

const read = (file: string) => fs.readFile(file);
const tlsOf = async (ca: string, cert: string, key: string): Promise<GrpcTls> => ({
  ca: await read(ca),
  cert: await read(cert),
  key: await read(key),
});

/** An ExplainerService client over exactly these credentials (no config involved). */
function rawClient(creds: grpc.ChannelCredentials) {
  const proto = loadProto<ExplainerProto>('explainer');
  return new proto.loupe.v1.ExplainerService(address, creds);
}

/** A call the service answers when it is reached; the error when the connection is refused. */
function listExplanations(client: ReturnType<typeof rawClient>): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    client.ListExplanations(
      { unitPrefix: 'nothing-here/', bestOnly: true },
      { deadline: Date.now() + 5_000 },
      (error) => {
        client.close();
        resolve(error);
      },
    );
  });
}

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-mtls-'));
  const ca = await caDir('loupe-ca');
  // the service's certificate serves its gRPC server and is what it presents as a client
  const server = issue(
    ca,
    'localhost',
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth',
  );
  const client = issue(ca, 'loupe-cli', 'extendedKeyUsage=clientAuth');
  certs = {
    ca: path.join(ca, 'ca.pem'),
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
  };
  const other = await caDir('other-ca');
  const stranger = issue(other, 'stranger', 'extendedKeyUsage=clientAuth');
  otherCa = { clientCert: stranger.cert, clientKey: stranger.key };

  llm = await startLlmServer({ respond: () => ({ content: '{"sequences":[]}', usage: USAGE }) });
  address = `127.0.0.1:${await freePort()}`;
  metricsPort = await freePort();
  db = await startTestDatabase();
  explainer = startProcess('services/explainer/dist/main.js', {
    LOUPE_DATA_DIR: path.join(scratch, 'data'),
    ...databaseEnv(db),
    LOUPE_EXPLAINER_ADDR: address,
    LOUPE_METRICS_PORT: String(metricsPort),
    LOUPE_GRPC_TLS_CA: certs.ca,
    LOUPE_GRPC_TLS_CERT: certs.serverCert,
    LOUPE_GRPC_TLS_KEY: certs.serverKey,
    LOUPE_LLM_BASE_URL: llm.url,
    LOUPE_LLM_MODEL: 'priced-model',
    LOUPE_LLM_PRICE_PROMPT: String(PRICE_PROMPT),
    LOUPE_LLM_PRICE_COMPLETION: String(PRICE_COMPLETION),
    LOUPE_EMBEDDINGS_BASE_URL: '',
    LOUPE_SERVICE_TOKEN: '',
  });
  await until(
    () =>
      fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
        (r) => r.status,
        () => 0,
      ),
    (s) => s === 200,
    'explainer /readyz',
  );
}, 120_000);

afterAll(async () => {
  await explainer?.stop();
  await db?.stop();
  await llm?.close();
  await fs.rm(scratch, { recursive: true, force: true });
});

describe('gRPC mTLS (LOUPE_GRPC_TLS_*) on a real service process', () => {
  it('a client with a certificate from the configured CA is served', async () => {
    const client = explainerServiceClient(address, {
      tls: await tlsOf(certs.ca, certs.clientCert, certs.clientKey),
    });
    try {
      const listed = await client.ListExplanations({ unitPrefix: 'nothing-here/', bestOnly: true });
      expect(listed.explanations).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('refuses a client that presents no certificate', async () => {
    const error = await listExplanations(rawClient(grpc.credentials.createSsl(await read(certs.ca))));
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(error?.details).toMatch(/No connection established.*certificate required/);
  });

  it('refuses a client whose certificate comes from another CA', async () => {
    const creds = grpc.credentials.createSsl(
      await read(certs.ca),
      await read(otherCa.clientKey),
      await read(otherCa.clientCert),
    );
    const error = await listExplanations(rawClient(creds));
    // TLS 1.3: the server checks the client's certificate after the client's side of the handshake,
    // so the client sees the connection dropped
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(error?.details).toMatch(/No connection established/);
  });

  it('refuses a plaintext client', async () => {
    const error = await listExplanations(rawClient(grpc.credentials.createInsecure()));
    expect(error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(error?.details).toMatch(/No connection established/);
    // the config-driven client with TLS turned off explicitly fails the same way
    const plain = explainerServiceClient(address, { tls: null });
    try {
      await expect(plain.ListExplanations({}, { deadlineMs: 5_000 })).rejects.toMatchObject({
        code: grpc.status.UNAVAILABLE,
      });
    } finally {
      plain.close();
    }
  });

  it('stays up and ready after the refused handshakes; health over mTLS says SERVING', async () => {
    expect(explainer.child.exitCode).toBeNull();
    expect((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status).toBe(200);
    const tls = await tlsOf(certs.ca, certs.clientCert, certs.clientKey);
    const creds = grpc.credentials.createSsl(tls.ca, tls.key, tls.cert);
    const health = await healthCheck(address, 'loupe.v1.ExplainerService', creds);
    expect(health).toEqual({ status: 'SERVING' });
  });
});

describe('half an mTLS setup', () => {
  it('stops a service at start with an error naming the missing variables', async () => {
    const half = startProcess('services/explainer/dist/main.js', {
      LOUPE_DATA_DIR: path.join(scratch, 'half'),
      LOUPE_EXPLAINER_ADDR: `127.0.0.1:${await freePort()}`,
      LOUPE_EMBEDDED_PG_PORT: String(await freePort()),
      LOUPE_GRPC_TLS_CA: certs.ca,
      LOUPE_GRPC_TLS_CERT: '',
      LOUPE_GRPC_TLS_KEY: '',
    });
    // stop() waits for the exit; SIGCONT does nothing to a process that is still starting
    expect(await half.stop('SIGCONT')).not.toBe(0);
    expect(half.stderr()).toMatch(
      /LOUPE_GRPC_TLS_CA is set but LOUPE_GRPC_TLS_CERT and LOUPE_GRPC_TLS_KEY are not/,
    );
  });
});

describe('LLM cost at LOUPE_LLM_PRICE_* in /metrics', () => {
  it('loupe_llm_cost_usd_total{model} is the hand-computed cost of the calls the LLM server answered', async () => {
    const client = explainerServiceClient(address, {
      tls: await tlsOf(certs.ca, certs.clientCert, certs.clientKey),
    });
    try {
      await client.Simulate({
        explanation: 'the word "river"',
        sequences: [{ tokens: ['the', ' river', ' bank'] }],
        llm: { simulator: 'json' },
      });
    } finally {
      client.close();
    }
    const calls = llm.requests.length;
    expect(calls).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const line = metrics
      .split('\n')
      .find((l) => l.startsWith('loupe_llm_cost_usd_total{model="priced-model"}'));
    expect(line, metrics.slice(0, 2000)).toBeDefined();
    expect(Number(line?.split(' ').at(-1))).toBeCloseTo(calls * COST_PER_CALL, 12);
  });
});
