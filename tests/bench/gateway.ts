import { createHash } from 'node:crypto';
import { TEST_DATABASE_URL_VARIABLE } from '@loupe/common/testing';
import { captureClient } from '../support/grpc.js';
import { NEURON_HOOK, SAE_ID, startServices } from '../support/workbench.js';
import { fmt, printTable, type Row } from './measure.js';

const CLIENTS = 50;
const SECONDS = 15;
/** every this many answers the load generator parses the whole JSON (the rest: status and first bytes) */
const PARSE_EVERY = 25;

/** What the web's unit page asks for a neuron (stats, histogram, first windows, explanations). */
const UNIT_PAGE = `query ($id: ID!) {
  unit(id: $id) {
    id index
    stats { maxActivation minActivation meanActivation fractionNonzero tokens }
    histogram { min max counts }
    top(first: 20) { edges { node { window maxValue values tokens { id text } } } }
    random(first: 20) { edges { node { window maxValue values tokens { id text } } } }
    explanations(first: 3) { edges { node { text score { value ciLow ciHigh } } } }
  }
}`;

const NEAREST = `query ($id: ID!) {
  unit(id: $id) { ... on Feature { nearest(first: 10) { edges { cosine node { id } } } } }
}`;

interface Load {
  p50: number;
  p99: number;
  perSecond: number;
  errors: number;
  requests: number;
  notModified: number;
}

type Next = (i: number) => { query: string; variables: object };

/**
 * The gateway under `clients` concurrent clients for a fixed time, each sending its next request as
 * soon as the last one answered (a closed loop, so latency is not hidden by a queue in the generator).
 * The generator shares the machine's two cores with the services, so it does not parse every 120 KB
 * answer: a GraphQL answer with errors starts with `{"errors"` (Apollo puts them first), which it
 * checks on every answer, and every PARSE_EVERY-th answer is parsed whole.
 * With `apq`, requests go as an Apollo client with automatic persisted queries sends them (GET with
 * the query's sha256 hash, the query itself only after PersistedQueryNotFound) and revalidate with
 * If-None-Match like a browser's HTTP cache (a 304 counts as an answer).
 */
async function load(url: string, clients: number, seconds: number, next: Next, apq = false): Promise<Load> {
  const latencies: number[] = [];
  let errors = 0;
  let notModified = 0;
  const end = Date.now() + seconds * 1000;
  let counter = 0;
  const etags = new Map<string, string>();
  const ask = async (i: number): Promise<{ ok: boolean; status: number }> => {
    const { query, variables } = next(i);
    if (!apq) {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
      });
      return { ok: await answerOk(response, i), status: response.status };
    }
    const hash = createHash('sha256').update(query).digest('hex');
    const extensions = JSON.stringify({ persistedQuery: { version: 1, sha256Hash: hash } });
    const params = new URLSearchParams({ variables: JSON.stringify(variables), extensions });
    const key = params.toString();
    const headers: Record<string, string> = { 'apollo-require-preflight': 'true' };
    const etag = etags.get(key);
    if (etag) headers['if-none-match'] = etag;
    let response = await fetch(`${url}?${key}`, { headers });
    if (response.status === 304) return { ok: true, status: 304 };
    const text = await response.text();
    if (text.includes('PERSISTED_QUERY_NOT_FOUND')) {
      params.set('query', query);
      response = await fetch(`${url}?${params}`, { headers });
      return { ok: await answerOk(response, i), status: response.status };
    }
    const seen = response.headers.get('etag');
    if (seen) etags.set(key, seen);
    return { ok: response.ok && text.startsWith('{"data"'), status: response.status };
  };
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        const t0 = process.hrtime.bigint();
        try {
          const { ok, status } = await ask(counter++);
          if (!ok) errors++;
          if (status === 304) notModified++;
        } catch {
          errors++;
        }
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return {
    p50: at(0.5),
    p99: at(0.99),
    perSecond: latencies.length / seconds,
    errors,
    requests: latencies.length,
    notModified,
  };
}

async function answerOk(response: Response, i: number): Promise<boolean> {
  const text = await response.text();
  if (!response.ok || !text.startsWith('{"data"')) return false;
  if (i % PARSE_EVERY !== 0) return true;
  const answer = JSON.parse(text) as { data?: unknown; errors?: unknown[] };
  return answer.data !== undefined && !answer.errors;
}

const figures = (l: Load) =>
  `p50 ${fmt(l.p50, 1)} ms, p99 ${fmt(l.p99, 1)} ms, ${fmt(l.perSecond)} req/s, ${l.errors} errors / ${fmt(l.requests)}`;

/**
 * The unit page under the same load while a capture job runs in the capture service (its forward
 * passes compete for the CPU and the database with the reads). Latency is reported; the error rate is
 * a property, not a timing: any failed read fails the bench.
 */
async function whileCaptureRuns(env: Record<string, string>, url: string, next: Next) {
  const capture = await captureClient(env.LOUPE_CAPTURE_ADDR);
  try {
    // a hook set not captured yet makes a new job; every hook of the tiny model keeps it busy longer
    const job = await capture.StartCapture({
      model: 'tiny',
      dataset: 'default',
      hooks: [
        'blocks.0.mlp.hook_post',
        'blocks.1.mlp.hook_post',
        'blocks.0.hook_resid_post',
        'blocks.1.hook_resid_post',
      ],
      maxTokens: 200_000,
    });
    const idle = await load(url, 1, 2, next);
    const before = await capture.GetCaptureJob({ id: job.id });
    const many = await load(url, CLIENTS, SECONDS, next);
    const after = await capture.GetCaptureJob({ id: job.id });
    await capture.CancelCaptureJob({ id: job.id });
    if (after.status !== 'running' && after.status !== 'done')
      throw new Error(`the capture job did not run during the load: ${after.status} ${after.error}`);
    if (many.errors > 0)
      throw new Error(`${many.errors} of ${many.requests} reads failed while a capture job ran`);
    return {
      figures: figures(many),
      reference: `1 client meanwhile: p50 ${fmt(idle.p50, 1)} ms; job ${before.windowsDone}→${after.windowsDone} of ${after.totalWindows} windows`,
    };
  } finally {
    capture.close();
  }
}

interface Measured {
  figures: string;
  reference: string;
}

/** Every measurement of the section on the database startTestDatabase picks now. */
async function measureAll(): Promise<Record<string, Measured>> {
  const services = await startServices();
  try {
    const url = services.gatewayUrl;
    const neuron: Next = (i) => ({
      query: UNIT_PAGE,
      variables: { id: `tiny/${NEURON_HOOK}/${(i * 37) % 256}` },
    });
    const nearest: Next = (i) => ({ query: NEAREST, variables: { id: `tiny/${SAE_ID}/${(i * 7) % 96}` } });
    // warm every cache the services keep (models, SAE, sessions) before measuring
    await load(url, 4, 2, neuron);
    await load(url, 4, 2, nearest);
    const out: Record<string, Measured> = {};
    for (const [name, next, apq] of [
      ['unit page (neuron: stats, histogram, 40 windows, explanations), POST', neuron, false],
      ['unit page, APQ GET + If-None-Match (as Apollo Client and a browser cache send it)', neuron, true],
      ['nearest units (feature: 10 nearest by decoder cosine), POST', nearest, false],
    ] as const) {
      const one = await load(url, 1, 5, next, apq);
      const many = await load(url, CLIENTS, SECONDS, next, apq);
      out[name] = {
        figures: `${figures(many)}${apq ? `, ${fmt(many.notModified)} × 304` : ''}`,
        reference: `1 client: p50 ${fmt(one.p50, 1)} ms, ${fmt(one.perSecond)} req/s`,
      };
    }
    out[`unit page while a capture job runs, POST`] = await whileCaptureRuns(services.env, url, neuron);
    return out;
  } finally {
    await services.stop();
  }
}

/**
 * Unit-page and nearest-unit latency under 50 concurrent clients on the tiny fixture's data: on the
 * embedded PGlite, and beside it on the real Postgres that LOUPE_TEST_DATABASE_URL names (when set).
 */
export async function gatewayBench(): Promise<void> {
  // the bench picks the database for each pass the way the test suites do, through this variable
  const server = process.env[TEST_DATABASE_URL_VARIABLE];
  delete process.env[TEST_DATABASE_URL_VARIABLE];
  const embedded = await measureAll();
  let real: Record<string, Measured> | undefined;
  if (server) {
    process.env[TEST_DATABASE_URL_VARIABLE] = server;
    real = await measureAll();
  }
  const rows: Row[] = Object.entries(embedded).map(([measure, e]) => ({
    measure: `${measure}, ${CLIENTS} clients`,
    value: e.figures,
    reference: real?.[measure]?.figures ?? `(set ${TEST_DATABASE_URL_VARIABLE})`,
    ratio: `PGlite ${e.reference}${real ? `; PostgreSQL ${real[measure].reference}` : ''}`,
  }));
  printTable('GraphQL gateway under load (tiny fixture model, all services on this machine)', rows, {
    measure: 'measure',
    value: 'embedded PGlite',
    reference: 'PostgreSQL (LOUPE_TEST_DATABASE_URL)',
    ratio: 'reference: 1 client',
  });
}
