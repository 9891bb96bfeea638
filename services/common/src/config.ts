import path from 'node:path';
import { ConfigError } from './errors.js';

/**
 * Every environment variable Loupe reads, in one table. The README's configuration table is checked
 * against this list by a test, and nothing else in the code base reads process.env.
 */
interface Variable<T> {
  name: string;
  default: string | undefined;
  description: string;
  parse(raw: string, name: string): T;
}

const text: Variable<string>['parse'] = (raw) => raw;
const positiveInt: Variable<number>['parse'] = (raw, name) => {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new ConfigError(`${name}="${raw}": expected a whole number ≥ 0`);
  return value;
};
/** A price or other amount that may be fractional: finite and ≥ 0. */
const nonNegativeNumber: Variable<number>['parse'] = (raw, name) => {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0)
    throw new ConfigError(`${name}="${raw}": expected a finite number ≥ 0 (e.g. 0.15)`);
  return value;
};
const oneOf =
  <T extends string>(...allowed: T[]): Variable<T>['parse'] =>
  (raw, name) => {
    if ((allowed as string[]).includes(raw)) return raw as T;
    throw new ConfigError(`${name}="${raw}": expected one of ${allowed.join(', ')}`);
  };

export type Device = 'cpu' | 'cuda' | 'auto';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent';

export const VARIABLES = {
  dataDir: {
    name: 'LOUPE_DATA_DIR',
    default: './.loupe',
    description: 'Where models, activation shards, SAE weights and the embedded database live',
    parse: (raw: string) => path.resolve(raw),
  },
  databaseUrl: {
    name: 'DATABASE_URL',
    default: undefined,
    description: 'Postgres (with pgvector) to use; unset starts the embedded PGlite server',
    parse: text,
  },
  embeddedPgPort: {
    name: 'LOUPE_EMBEDDED_PG_PORT',
    default: '5439',
    description: 'Loopback port of the embedded Postgres when DATABASE_URL is unset',
    parse: positiveInt,
  },
  device: {
    name: 'LOUPE_DEVICE',
    default: 'auto',
    description: 'ONNX Runtime execution provider: cpu, cuda, or auto (CUDA when it loads, else CPU)',
    parse: oneOf<Device>('cpu', 'cuda', 'auto'),
  },
  intraOpThreads: {
    name: 'LOUPE_THREADS',
    default: '0',
    description: 'ONNX Runtime intra-op threads per session (0 = one per physical core)',
    parse: positiveInt,
  },
  model: {
    name: 'LOUPE_MODEL',
    default: 'gpt2',
    description: 'Model served by default: a folder name under $LOUPE_DATA_DIR/models or a path',
    parse: text,
  },
  captureAddress: {
    name: 'LOUPE_CAPTURE_ADDR',
    default: '127.0.0.1:50051',
    description: 'host:port the capture gRPC service listens on and clients dial',
    parse: text,
  },
  saeAddress: {
    name: 'LOUPE_SAE_ADDR',
    default: '127.0.0.1:50052',
    description: 'host:port the SAE gRPC service listens on and clients dial',
    parse: text,
  },
  explainerAddress: {
    name: 'LOUPE_EXPLAINER_ADDR',
    default: '127.0.0.1:50053',
    description: 'host:port the explainer gRPC service listens on and clients dial',
    parse: text,
  },
  gatewayPort: {
    name: 'LOUPE_GATEWAY_PORT',
    default: '4000',
    description: 'Port of the GraphQL gateway (http://host:port/graphql)',
    parse: positiveInt,
  },
  gatewayUrl: {
    name: 'LOUPE_GATEWAY_URL',
    default: undefined,
    description:
      'GraphQL URL the web app reaches the gateway at (another host or container); unset = 127.0.0.1 on LOUPE_GATEWAY_PORT',
    parse: text,
  },
  gatewayPublicReads: {
    name: 'LOUPE_GATEWAY_PUBLIC_READS',
    default: 'true',
    description: 'true: queries need no API key (mutations always do); false: every operation needs one',
    parse: (raw: string, name: string) => oneOf('true', 'false')(raw, name) === 'true',
  },
  gatewayRateLimit: {
    name: 'LOUPE_GATEWAY_RATE_LIMIT',
    default: '0',
    description:
      'GraphQL requests per second per API key (keyless requests: per client address), bursts of twice that; 0 = unlimited',
    parse: positiveInt,
  },
  gatewayRequestTimeoutMs: {
    name: 'LOUPE_GATEWAY_REQUEST_TIMEOUT_MS',
    default: '120000',
    description:
      'Deadline of one GraphQL request: its service calls are cancelled and their forward passes stop after it',
    parse: positiveInt,
  },
  gatewayComputeSlots: {
    name: 'LOUPE_GATEWAY_COMPUTE_SLOTS',
    default: '4',
    description:
      'Expensive operations (steer, activations, encode, shopSearch) one client may run at once; more wait, up to 4 times that',
    parse: positiveInt,
  },
  gatewayResponseCacheMs: {
    name: 'LOUPE_GATEWAY_RESPONSE_CACHE_MS',
    default: '5000',
    description:
      'Age after which the gateway refreshes a kept unit / units answer in the background (sending it meanwhile, up to 10 times that age); a mutation through it drops them; 0 = no answer cache',
    parse: positiveInt,
  },
  gatewayMaxInFlight: {
    name: 'LOUPE_GATEWAY_MAX_IN_FLIGHT',
    default: '256',
    description:
      'GraphQL requests the gateway works on at once; beyond that it answers 503 UNAVAILABLE with Retry-After at once instead of queueing; 0 = unlimited',
    parse: positiveInt,
  },
  cacheMb: {
    name: 'LOUPE_CACHE_MB',
    default: '256',
    description:
      'Memory (MiB) each of the gateway and the capture service may spend on records of finished jobs and cached answers (LRU by bytes); 0 = no cache',
    parse: positiveInt,
  },
  dbPoolSize: {
    name: 'LOUPE_DB_POOL_SIZE',
    default: '10',
    description: 'Postgres connections per service process (each service has its own pool)',
    parse: positiveInt,
  },
  dbStatementTimeoutMs: {
    name: 'LOUPE_DB_STATEMENT_TIMEOUT_MS',
    default: '120000',
    description:
      "Postgres statement_timeout of the services' connections (real Postgres; the embedded one ignores it): longer statements are cancelled; 0 = none",
    parse: positiveInt,
  },
  gatewayCorsOrigins: {
    name: 'LOUPE_GATEWAY_CORS_ORIGINS',
    default: undefined,
    description:
      'Comma-separated browser origins allowed to call the gateway cross-origin (* = any); unset = same origin only',
    parse: (raw: string) =>
      raw
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean),
  },
  serviceToken: {
    name: 'LOUPE_SERVICE_TOKEN',
    default: undefined,
    description:
      'Shared secret the gRPC services require from their callers (health checks exempt); unset = none (never logged)',
    parse: text,
  },
  grpcTlsCa: {
    name: 'LOUPE_GRPC_TLS_CA',
    default: undefined,
    description:
      'PEM file of the CA that signs every service certificate; with the two below: mTLS on every gRPC server and client',
    parse: (raw: string) => path.resolve(raw),
  },
  grpcTlsCert: {
    name: 'LOUPE_GRPC_TLS_CERT',
    default: undefined,
    description:
      "PEM file of this process's certificate (served by its gRPC servers, presented by its clients)",
    parse: (raw: string) => path.resolve(raw),
  },
  grpcTlsKey: {
    name: 'LOUPE_GRPC_TLS_KEY',
    default: undefined,
    description: "PEM file of that certificate's private key (never logged)",
    parse: (raw: string) => path.resolve(raw),
  },
  webPort: {
    name: 'LOUPE_WEB_PORT',
    default: '3000',
    description: 'Port of the Next.js web app',
    parse: positiveInt,
  },
  metricsPort: {
    name: 'LOUPE_METRICS_PORT',
    default: undefined,
    description:
      'Port of GET /metrics, /healthz, /readyz in each gRPC service process (the gateway serves them on its own port); unset = none',
    parse: positiveInt,
  },
  llmBaseUrl: {
    name: 'LOUPE_LLM_BASE_URL',
    default: undefined,
    description:
      'OpenAI-compatible chat-completions server (…/v1); unset uses the built-in statistical baseline',
    parse: (raw: string) => raw.replace(/\/+$/, ''),
  },
  llmApiKey: {
    name: 'LOUPE_LLM_API_KEY',
    default: undefined,
    description: 'API key sent as a bearer token to the LLM and embeddings servers (never logged)',
    parse: text,
  },
  llmModel: {
    name: 'LOUPE_LLM_MODEL',
    default: 'gpt-4o-mini',
    description: 'Model name the explainer and simulator ask the LLM server for',
    parse: text,
  },
  simulator: {
    name: 'LOUPE_SIMULATOR',
    default: undefined,
    description:
      'Simulator when a request names none and an LLM server is set: openai-all-at-once, openai-token-by-token, line-logprobs, json or baseline; unset = line-logprobs',
    parse: text,
  },
  llmConcurrency: {
    name: 'LOUPE_LLM_CONCURRENCY',
    default: '4',
    description: 'Most LLM requests in flight at once, per explainer process',
    parse: positiveInt,
  },
  llmTimeoutMs: {
    name: 'LOUPE_LLM_TIMEOUT_MS',
    default: '60000',
    description: 'Timeout of one LLM request (retried with backoff on 429, 5xx and timeouts)',
    parse: positiveInt,
  },
  llmPricePrompt: {
    name: 'LOUPE_LLM_PRICE_PROMPT',
    default: '0',
    description:
      'US dollars per million prompt tokens, for loupe_llm_cost_usd_total and job cost; 0 = unpriced (e.g. a local vLLM)',
    parse: nonNegativeNumber,
  },
  llmPriceCompletion: {
    name: 'LOUPE_LLM_PRICE_COMPLETION',
    default: '0',
    description: 'US dollars per million completion tokens; 0 = unpriced',
    parse: nonNegativeNumber,
  },
  embeddingsBaseUrl: {
    name: 'LOUPE_EMBEDDINGS_BASE_URL',
    default: undefined,
    description:
      'OpenAI-compatible /embeddings server for semantic explanation search; unset = full-text only',
    parse: (raw: string) => raw.replace(/\/+$/, ''),
  },
  embeddingsModel: {
    name: 'LOUPE_EMBEDDINGS_MODEL',
    default: 'text-embedding-3-small',
    description: 'Embedding model name for explanation search',
    parse: text,
  },
  maxBatchTokens: {
    name: 'LOUPE_MAX_BATCH_TOKENS',
    default: '4096',
    description: 'Upper bound on batch × sequence tokens in one forward pass (dynamic batching)',
    parse: positiveInt,
  },
  batchWindowMs: {
    name: 'LOUPE_BATCH_WINDOW_MS',
    default: '2',
    description: 'How long a request waits for others to share its forward pass',
    parse: positiveInt,
  },
  maxTextChars: {
    name: 'LOUPE_MAX_TEXT_CHARS',
    default: '100000',
    description: 'Longest text (characters) accepted by any request, before tokenizing',
    parse: positiveInt,
  },
  logLevel: {
    name: 'LOUPE_LOG_LEVEL',
    default: 'info',
    description: 'trace, debug, info, warn, error or silent',
    parse: oneOf<LogLevel>('trace', 'debug', 'info', 'warn', 'error', 'silent'),
  },
  hfEndpoint: {
    name: 'HF_ENDPOINT',
    default: 'https://huggingface.co',
    description: 'Hugging Face hub used by `loupe model pull` and `loupe sae pull`',
    parse: (raw: string) => raw.replace(/\/+$/, ''),
  },
  hfToken: {
    name: 'HF_TOKEN',
    default: undefined,
    description: 'Token for private or gated hub repositories (never logged)',
    parse: text,
  },
} satisfies Record<string, Variable<unknown>>;

type Vars = typeof VARIABLES;
export type LoupeConfig = {
  [K in keyof Vars]: Vars[K]['default'] extends string
    ? ReturnType<Vars[K]['parse']>
    : ReturnType<Vars[K]['parse']> | undefined;
};

export function loadConfig(env: Record<string, string | undefined> = process.env): LoupeConfig {
  const config: Record<string, unknown> = {};
  for (const [key, variable] of Object.entries(VARIABLES) as [string, Variable<unknown>][]) {
    const raw = env[variable.name] === '' ? undefined : env[variable.name];
    const value = raw ?? variable.default;
    config[key] = value === undefined ? undefined : variable.parse(value, variable.name);
  }
  checkGrpcTls(config as LoupeConfig);
  return config as LoupeConfig;
}

/** mTLS needs the CA, the certificate and its key together: half a setup is refused, not ignored. */
function checkGrpcTls(config: LoupeConfig): void {
  const tls = [VARIABLES.grpcTlsCa, VARIABLES.grpcTlsCert, VARIABLES.grpcTlsKey];
  const values = [config.grpcTlsCa, config.grpcTlsCert, config.grpcTlsKey];
  const missing = tls.filter((_, i) => values[i] === undefined).map((v) => v.name);
  if (missing.length === 0 || missing.length === tls.length) return;
  const set = tls.filter((_, i) => values[i] !== undefined).map((v) => v.name);
  throw new ConfigError(
    `${set.join(' and ')} ${set.length > 1 ? 'are' : 'is'} set but ${missing.join(' and ')} ${
      missing.length > 1 ? 'are' : 'is'
    } not: gRPC mTLS needs all of LOUPE_GRPC_TLS_CA, LOUPE_GRPC_TLS_CERT and LOUPE_GRPC_TLS_KEY, or none`,
  );
}

export function modelsDir(config: Pick<LoupeConfig, 'dataDir'>): string {
  return path.join(config.dataDir, 'models');
}

/**
 * NODE_ENV=production unless it is set: graphql-js then skips its cross-realm `instanceof` checks,
 * a tenth of a unit page's time in the gateway (measured). The container images set it already;
 * this is for a gateway started bare. Call it before graphql is imported.
 */
export function preferProductionMode(env: Record<string, string | undefined> = process.env): void {
  env.NODE_ENV ??= 'production';
}

/** This process's environment with `extra` on top, for a child process that reads its own config. */
export function childEnvironment(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return { ...process.env, ...extra };
}
