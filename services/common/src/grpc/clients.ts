import * as grpc from '@grpc/grpc-js';
import { loadConfig } from '../config.js';
import { type ErrorCode, LoupeError } from '../errors.js';
import type {
  CaptureProto,
  CaptureServiceClient,
  ExplainerProto,
  ExplainerServiceClient,
  SaeProto,
  SaeServiceClient,
} from '../proto/index.js';
import { currentRequest, currentRequestId, REQUEST_ID_HEADER } from '../request-context.js';
import { loadProto } from './protos.js';
import { SERVICE_TOKEN_METADATA_KEY } from './service-token.js';
import { ERROR_CODE_METADATA_KEY, GRPC_STATUS } from './status.js';
import { type GrpcTls, grpcChannelCredentials, grpcTlsFromConfig } from './tls.js';

/**
 * Promise-returning clients of Loupe's gRPC services, typed from the generated client interfaces.
 * Rejections are grpc `ServiceError`s (code, details, metadata) as the wire gave them; a service that
 * calls another turns them into its own errors with `fromServiceError`.
 */

/** One unary method of a generated client, as a promise (the last overload is `(argument, callback)`). */
type Unary<F> = F extends (
  argument: infer Request,
  callback: grpc.requestCallback<infer Response>,
) => grpc.ClientUnaryCall
  ? (request: Request, options?: { deadlineMs?: number }) => Promise<Response>
  : never;

type Promised<C, Names extends keyof C> = { [N in Names]: Unary<C[N]> } & {
  /** resolves once the channel is connected (or rejects after `timeoutMs`) */
  ready(timeoutMs?: number): Promise<void>;
  close(): void;
};

const CAPTURE_METHODS = [
  'ModelInfo',
  'Tokenize',
  'Activations',
  'LogitLens',
  'DirectLogitAttribution',
  'ActivationPatching',
  'Generate',
  'StartCapture',
  'GetCaptureJob',
  'CancelCaptureJob',
  'ListCaptureJobs',
  'NeuronRecord',
  'ListNeurons',
  'NeuronWeights',
  'IndexDocuments',
  'SearchDocuments',
  'GetCollection',
  'ListCollections',
] as const;

const SAE_METHODS = [
  'Train',
  'GetTrainingJob',
  'CancelTrainingJob',
  'ListTrainingJobs',
  'GetSae',
  'ListSaes',
  'Evaluate',
  'Encode',
  'Decode',
  'FeatureWeights',
  'NearestFeatures',
  'FeatureRecords',
  'FeatureStats',
  'ListFeatures',
  'FeatureDensity',
] as const;

const EXPLAINER_METHODS = [
  'Explain',
  'Simulate',
  'Score',
  'StartScoringJob',
  'GetJob',
  'CancelJob',
  'ListJobs',
  'SearchExplanations',
  'ListExplanations',
  'GetPublishedNeuron',
  'ListPublishedNeurons',
  'PublishedScoresByLayer',
] as const;

export type CaptureApi = Promised<CaptureServiceClient, (typeof CAPTURE_METHODS)[number]>;
export type SaeApi = Promised<SaeServiceClient, (typeof SAE_METHODS)[number]>;
export type ExplainerApi = Promised<ExplainerServiceClient, (typeof EXPLAINER_METHODS)[number]>;

export interface ClientOptions {
  /** largest message received; logits of a long text are tens of megabytes */
  maxMessageBytes?: number;
  /** sent with every call as loupe-service-token; default: LOUPE_SERVICE_TOKEN of this process */
  serviceToken?: string;
  /**
   * mTLS (CA, this client's certificate and key); default: LOUPE_GRPC_TLS_* of this process;
   * null dials in plaintext whatever the config says
   */
  tls?: GrpcTls | null;
}

const DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024 * 1024;

/** A CaptureService client at `address` (host:port). Connects lazily; `ready()` waits for it. */
export function captureServiceClient(address: string, options: ClientOptions = {}): CaptureApi {
  const proto = loadProto<CaptureProto>('capture');
  const client = new proto.loupe.v1.CaptureService(address, credentials(options), channel(options));
  return promised(client, CAPTURE_METHODS, options) as unknown as CaptureApi;
}

/** An SaeService client at `address` (host:port). Connects lazily; `ready()` waits for it. */
export function saeServiceClient(address: string, options: ClientOptions = {}): SaeApi {
  const proto = loadProto<SaeProto>('sae');
  const client = new proto.loupe.v1.SaeService(address, credentials(options), channel(options));
  return promised(client, SAE_METHODS, options) as unknown as SaeApi;
}

/** An ExplainerService client at `address` (host:port). Connects lazily; `ready()` waits for it. */
export function explainerServiceClient(address: string, options: ClientOptions = {}): ExplainerApi {
  const proto = loadProto<ExplainerProto>('explainer');
  const client = new proto.loupe.v1.ExplainerService(address, credentials(options), channel(options));
  return promised(client, EXPLAINER_METHODS, options) as unknown as ExplainerApi;
}

function credentials(options: ClientOptions): grpc.ChannelCredentials {
  return grpcChannelCredentials(options.tls === undefined ? grpcTlsFromConfig() : (options.tls ?? undefined));
}

function channel(options: ClientOptions): grpc.ChannelOptions {
  const max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  return { 'grpc.max_receive_message_length': max, 'grpc.max_send_message_length': max };
}

type Callback = (error: grpc.ServiceError | null, value: unknown) => void;

function promised(
  client: grpc.Client,
  methods: readonly string[],
  options: ClientOptions,
): Record<string, unknown> {
  const api: Record<string, unknown> = {};
  const serviceToken = options.serviceToken ?? loadConfig().serviceToken;
  for (const method of methods) {
    type UnaryCall = (
      request: unknown,
      metadata: grpc.Metadata,
      options: grpc.CallOptions,
      callback: Callback,
    ) => grpc.ClientUnaryCall;
    const call = (client as unknown as Record<string, UnaryCall>)[method].bind(client);
    api[method] = (request: unknown, options: { deadlineMs?: number } = {}) =>
      new Promise((resolve, reject) => {
        // the request this call is made for bounds it: its deadline travels with the call, and a
        // caller that went away cancels it (the callee sees the cancellation and stops its work)
        const context = currentRequest();
        const signal = context?.signal;
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        const deadlines = [
          options.deadlineMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.deadlineMs,
          context?.deadline ?? Number.POSITIVE_INFINITY,
        ];
        const deadline = Math.min(...deadlines);
        const callOptions: grpc.CallOptions = Number.isFinite(deadline) ? { deadline } : {};
        const onAbort = () => pending.cancel();
        const pending = call(request, requestMetadata(serviceToken), callOptions, (error, value) => {
          signal?.removeEventListener('abort', onAbort);
          if (error && signal?.aborted && error.code === grpc.status.CANCELLED) reject(signal.reason);
          else if (error?.code === grpc.status.DEADLINE_EXCEEDED && deadline === context?.deadline)
            reject(new LoupeError('the request ran past its deadline and was stopped', 'DEADLINE_EXCEEDED'));
          else if (error) reject(error);
          else resolve(value);
        });
        signal?.addEventListener('abort', onAbort, { once: true });
      });
  }
  api.ready = (timeoutMs = 60_000) =>
    new Promise<void>((resolve, reject) =>
      client.waitForReady(Date.now() + timeoutMs, (error) => (error ? reject(error) : resolve())),
    );
  api.close = () => client.close();
  return api;
}

/**
 * The id of the request this call is made for, passed on so the callee's log lines carry it too, and
 * the shared service token when one is configured.
 */
function requestMetadata(serviceToken: string | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (serviceToken) metadata.set(SERVICE_TOKEN_METADATA_KEY, serviceToken);
  const requestId = currentRequestId();
  if (requestId) metadata.set(REQUEST_ID_HEADER, requestId);
  return metadata;
}

const LOUPE_CODES = new Set(Object.keys(GRPC_STATUS));

/**
 * The error a service passes on when a call to another service failed: the callee's own Loupe error
 * code (carried in metadata) and message when it gave one, so "unknown hook" stays INVALID_ARGUMENT;
 * a callee that is down or timed out is UNAVAILABLE; anything else is a bug and stays one.
 */
export function fromServiceError(error: unknown, service: string): Error {
  const e = error as Partial<grpc.ServiceError>;
  if (typeof e?.code !== 'number') return error as Error;
  const carried = e.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
  if (typeof carried === 'string' && LOUPE_CODES.has(carried))
    return new LoupeError(`${service}: ${e.details}`, carried as ErrorCode);
  if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED)
    return new LoupeError(`the ${service} is unavailable: ${e.details}`, 'UNAVAILABLE');
  return new Error(`${service} failed: ${e.details ?? e.message}`);
}
