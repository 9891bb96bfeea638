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
    printTable('GraphQL gateway under load (tiny fixture model, all services on this machine)', rows);
  } finally {
    await services.stop();
  }
}
