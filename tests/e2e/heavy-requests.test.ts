import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { healthCheck, until } from '../support/health.js';
import { convertedFixture } from '../support/model.js';
import { freePort, type RunningProcess, startProcess } from '../support/process.js';

// Cheap requests that ask for expensive work, against real capture and gateway processes: the query
// priced by the model work it asks for (40 aliased generations refused before anything runs), one
// client's expensive operations run a few at a time (the rest wait or are refused) while other
// requests are answered, and a request's deadline reaching the capture service's generation loop.

let scratch: string;
const processes: RunningProcess[] = [];
const databases: TestDatabase[] = [];
let slotted: string;
let hurried: string;

async function startStack(extra: Record<string, string>): Promise<string> {
  const dataDir = path.join(scratch, `data-${processes.length}`);
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  await fs.mkdir(path.join(dataDir, 'models'), { recursive: true });
  await fs.rename(modelDir, path.join(dataDir, 'models', 'tiny'));
  const gatewayPort = await freePort();
  const db = await startTestDatabase();
  databases.push(db);
  const env = {
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: 'tiny',
    ...databaseEnv(db),
    LOUPE_CAPTURE_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_SAE_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_EXPLAINER_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_GATEWAY_PORT: String(gatewayPort),
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    ...extra,
  };
  for (const entry of ['capture/dist/main.js', 'gateway/dist/bin.js'])
    processes.push(startProcess(`services/${entry}`, env));
  await until(
    () => healthCheck(env.LOUPE_CAPTURE_ADDR),
    (h) => h.status === 'SERVING',
    'capture',
  );
  const url = `http://127.0.0.1:${gatewayPort}/graphql`;
  await until(
    () =>
      fetch(url.replace('/graphql', '/healthz')).then(
        (r) => r.status,
        () => 0,
      ),
    (s) => s === 200,
    'gateway',
  );
  return url;
}

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-heavy-'));
  slotted = await startStack({ LOUPE_GATEWAY_COMPUTE_SLOTS: '1' });
  hurried = await startStack({ LOUPE_GATEWAY_REQUEST_TIMEOUT_MS: '1' });
}, 240_000);

afterAll(async () => {
  for (const p of processes.reverse()) await p.stop();
  for (const db of databases) await db.stop();
  await fs.rm(scratch, { recursive: true, force: true });
});

interface Answer {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: { code?: string; compute?: number } }[];
}

async function gql(url: string, query: string, variables?: Record<string, unknown>): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as Answer;
}

const steer = (alias: string, maxTokens: number) =>
  `${alias}: steer(prompt: "hi", edits: [], options: { maxTokens: ${maxTokens}, seed: 1 }) { seed }`;

describe('requests that ask for more work than they look', () => {
  it('refuses 40 aliased 256-token generations up front, naming the work and the limit', async () => {
    const query = `{ ${Array.from({ length: 40 }, (_, i) => steer(`a${i}`, 256)).join(' ')} }`;
    const answer = await gql(slotted, query);
    expect(answer.data ?? null).toBeNull();
    expect(answer.errors).toHaveLength(1);
    expect(answer.errors?.[0].extensions?.code).toBe('QUERY_TOO_COSTLY');
    expect(answer.errors?.[0].message).toMatch(/about \d+ tokens of model work .* the limit is 8192/);
    // the same price whether maxTokens is written inline or passed as a variable
    const viaVariables = await gql(
      slotted,
      `query ($n: Int!) { ${Array.from({ length: 40 }, (_, i) => `a${i}: steer(prompt: "hi", edits: [], options: { maxTokens: $n }) { seed }`).join(' ')} }`,
      { n: 256 },
    );
    expect(viaVariables.errors?.[0].extensions?.compute).toBe(answer.errors?.[0].extensions?.compute);
    // a handful of short ones is fine
    const few = await gql(slotted, `{ ${[0, 1, 2].map((i) => steer(`a${i}`, 4)).join(' ')} }`);
    expect(few.errors).toBeUndefined();
    expect(Object.keys(few.data ?? {})).toHaveLength(3);
  });

  it("runs one client's generations a slot at a time, refuses past the queue, and answers others meanwhile", async () => {
    // 1 slot, 4 waiting: of 8 requests at once, 5 are served and 3 refused
    const heavy = Array.from({ length: 8 }, () => gql(slotted, `{ ${steer('s', 128)} }`));
    const trivial = await gql(slotted, '{ __typename }');
    expect(trivial.data).toEqual({ __typename: 'Query' });
    const answers = await Promise.all(heavy);
    const codes = answers.map((a) => a.errors?.[0]?.extensions?.code ?? 'OK');
    expect(codes.filter((c) => c === 'OK')).toHaveLength(5);
    expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(3);
    const refused = answers.find((a) => a.errors)?.errors?.[0].message ?? '';
    expect(refused).toMatch(/at most 1 run and 4 wait \(LOUPE_GATEWAY_COMPUTE_SLOTS\)/);
  });

  it("stops a request at its deadline, in the gateway and in the capture service's generation loop", async () => {
    const answer = await gql(hurried, `{ ${steer('s', 256)} }`);
    expect(answer.errors?.[0].extensions?.code).toBe('DEADLINE_EXCEEDED');
    expect(answer.errors?.[0].message).toMatch(/deadline/);
    expect((await gql(hurried, '{ __typename }')).data).toEqual({ __typename: 'Query' });
  });
});
