import client from 'prom-client';

/**
 * The one Prometheus registry of a process. `loupe serve` runs every service in one process, so
 * each metric is created once here and labelled with the service that recorded it.
 */
export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry, prefix: 'loupe_process_' });

/** Latency buckets from 1 ms (a tokenize) to a minute (a long capture or an LLM call). */
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export const rpcDuration = new client.Histogram({
  name: 'loupe_rpc_duration_seconds',
  help: 'Latency of gRPC calls served, by service, method and status code',
  labelNames: ['service', 'method', 'code'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const graphqlDuration = new client.Histogram({
  name: 'loupe_graphql_duration_seconds',
  help: 'Latency of GraphQL operations served by the gateway, by operation name and outcome',
  labelNames: ['operation', 'type', 'outcome'] as const,
  buckets: LATENCY_BUCKETS,
  registers: [registry],
});

export const jobsFinished = new client.Counter({
  name: 'loupe_jobs_finished_total',
  help: 'Durable jobs (capture, training, scoring) that ended, by job table and outcome',
  labelNames: ['table', 'outcome'] as const,
  registers: [registry],
});

export const tokensProcessed = new client.Counter({
  name: 'loupe_tokens_processed_total',
  help: 'Tokens run through a model forward pass, by service and model',
  labelNames: ['service', 'model'] as const,
  registers: [registry],
});

export const llmTokens = new client.Counter({
  name: 'loupe_llm_tokens_total',
  help: 'LLM tokens used by the explainer, by model, kind (prompt, completion) and source (server, estimated)',
  labelNames: ['model', 'kind', 'source'] as const,
  registers: [registry],
});

export const llmCalls = new client.Counter({
  name: 'loupe_llm_calls_total',
  help: 'LLM chat calls that returned, by model; retries counts the extra attempts they took',
  labelNames: ['model'] as const,
  registers: [registry],
});

export const llmCost = new client.Counter({
  name: 'loupe_llm_cost_usd_total',
  help: 'US dollars spent on LLM calls at LOUPE_LLM_PRICE_PROMPT/COMPLETION (per million tokens), by model; 0 when unpriced',
  labelNames: ['model'] as const,
  registers: [registry],
});

export const llmRetries = new client.Counter({
  name: 'loupe_llm_retries_total',
  help: 'Extra attempts LLM calls needed (429, 5xx, timeouts), by model',
  labelNames: ['model'] as const,
  registers: [registry],
});

export const executionProvider = new client.Gauge({
  name: 'loupe_onnx_execution_provider',
  help: 'ONNX Runtime sessions open per execution provider (cpu, cuda) and service',
  labelNames: ['service', 'provider'] as const,
  registers: [registry],
});

/** Prometheus text of every metric of this process. */
export async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
