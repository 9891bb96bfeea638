import { captureClient } from '../support/grpc.js';
import { NEURON_HOOK, SAE_ID, startServices } from '../support/workbench.js';
import { fmt, printTable } from './measure.js';

const CLIENTS = 50;
const SECONDS = 15;

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
}

/**
 * The gateway under `clients` concurrent clients for a fixed time, each sending its next request as
 * soon as the last one answered (a closed loop, so latency is not hidden by a queue in the generator).
 */
async function load(
  url: string,
  clients: number,
  seconds: number,
  next: (i: number) => { query: string; variables: object },
) {
  const latencies: number[] = [];
  let errors = 0;
  const end = Date.now() + seconds * 1000;
  let counter = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        const body = JSON.stringify(next(counter++));
        const t0 = process.hrtime.bigint();
        try {
          const response = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
          });
          const answer = (await response.json()) as { errors?: unknown[] };
          if (!response.ok || answer.errors) errors++;
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
  } satisfies Load;
}

/**
 * The unit page under the same load while a capture job runs in the capture service (its forward
 * passes compete for the CPU and the database with the reads). Latency is reported; the error rate is
 * a property, not a timing: any failed read fails the bench.
 */
async function whileCaptureRuns(
  env: Record<string, string>,
  url: string,
  next: (i: number) => { query: string; variables: object },
) {
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
      measure: `unit page while a capture job runs, ${CLIENTS} clients`,
      value: `p50 ${fmt(many.p50, 1)} ms, p99 ${fmt(many.p99, 1)} ms, ${fmt(many.perSecond)} req/s, ${many.errors} errors / ${fmt(many.requests)}`,
      reference: `job ${before.phase} ${before.windowsDone}→${after.phase} ${after.windowsDone} of ${after.totalWindows} windows during the load`,
      ratio: `1 client meanwhile: p50 ${fmt(idle.p50, 1)} ms`,
    };
  } finally {
    capture.close();
  }
}

/** Unit-page query and nearest-unit search latency under 50 concurrent clients, on the tiny fixture's data. */
export async function gatewayBench(): Promise<void> {
  const services = await startServices();
  try {
    const neuron = (i: number) => ({
      query: UNIT_PAGE,
      variables: { id: `tiny/${NEURON_HOOK}/${(i * 37) % 256}` },
    });
    const nearest = (i: number) => ({ query: NEAREST, variables: { id: `tiny/${SAE_ID}/${(i * 7) % 96}` } });
    // warm every cache the services keep (models, SAE, sessions) before measuring
    await load(services.gatewayUrl, 4, 2, neuron);
    await load(services.gatewayUrl, 4, 2, nearest);
    const rows = [];
    for (const [name, next] of [
      ['unit page (neuron: stats, histogram, 40 windows, explanations)', neuron],
      ['nearest units (feature: 10 nearest by decoder cosine)', nearest],
    ] as const) {
      const one = await load(services.gatewayUrl, 1, 5, next);
      const many = await load(services.gatewayUrl, CLIENTS, SECONDS, next);
      rows.push({
        measure: `${name}, ${CLIENTS} clients`,
        value: `p50 ${fmt(many.p50, 1)} ms, p99 ${fmt(many.p99, 1)} ms, ${fmt(many.perSecond)} req/s, ${many.errors} errors / ${fmt(many.requests)}`,
        reference: `1 client: p50 ${fmt(one.p50, 1)} ms, ${fmt(one.perSecond)} req/s`,
        ratio: `${fmt(many.perSecond / one.perSecond, 1)}× throughput`,
      });
    }
    rows.push(await whileCaptureRuns(services.env, services.gatewayUrl, neuron));
    printTable('GraphQL gateway under load (tiny fixture model, all services on this machine)', rows);
  } finally {
    await services.stop();
  }
}
