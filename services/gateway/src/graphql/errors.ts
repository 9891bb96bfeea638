import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { type ErrorCode, type Logger, LoupeError } from '@loupe/common';
import { ERROR_CODE_METADATA_KEY, GRPC_STATUS } from '@loupe/common/grpc';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';

/**
 * Errors as clients see them: a GraphQL error with a stable `extensions.code` and a clear message.
 * Loupe error codes (from the gateway's own checks or carried over gRPC from a service) map here,
 * once; anything else is a bug, logged in full and shown as INTERNAL with no detail.
 */
export type GatewayErrorCode =
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'UNAVAILABLE'
  | 'UNAUTHENTICATED'
  | 'CANCELLED'
  | 'DEADLINE_EXCEEDED'
  | 'RATE_LIMITED'
  | 'INTERNAL';

const FROM_LOUPE: Record<ErrorCode, GatewayErrorCode> = {
  INVALID_ARGUMENT: 'BAD_USER_INPUT',
  UNKNOWN_HOOK: 'BAD_USER_INPUT',
  TOO_LONG: 'BAD_USER_INPUT',
  UNKNOWN_MODEL: 'NOT_FOUND',
  NOT_FOUND: 'NOT_FOUND',
  // a model folder or configuration that is broken: the request was fine, the service cannot serve it
  BAD_CHECKPOINT: 'UNAVAILABLE',
  CONFIG: 'UNAVAILABLE',
  UNAVAILABLE: 'UNAVAILABLE',
  // a service refused the gateway's LOUPE_SERVICE_TOKEN: a deployment mistake, not the caller's
  UNAUTHENTICATED: 'UNAVAILABLE',
  CANCELLED: 'CANCELLED',
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  RATE_LIMITED: 'RATE_LIMITED',
};

/** Codes graphql-js and Apollo Server give requests that never ran (parse, validation, variables). */
const REQUEST_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'QUERY_TOO_DEEP',
  'QUERY_TOO_COSTLY',
]);
const OWN_CODES = new Set<string>(['BAD_USER_INPUT', 'NOT_FOUND', 'UNAVAILABLE', 'UNAUTHENTICATED']);

export function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED' } });
}

const LOUPE_CODES = new Set(Object.keys(GRPC_STATUS));

/**
 * A failed gRPC call as the gateway passes it on: the service's own Loupe error (code in metadata,
 * message in details) when it gave one; "unavailable" without the address when it could not be
 * reached or does not serve the RPC yet; otherwise an internal error, whose details go to the log only.
 */
export function fromServiceError(error: unknown, service: string): Error {
  const e = error as Partial<ServiceError>;
  if (typeof e?.code !== 'number') return error as Error;
  const carried = e.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
  if (typeof carried === 'string' && LOUPE_CODES.has(carried))
    return new LoupeError(e.details ?? '', carried as ErrorCode);
  if (e.code === GrpcStatus.UNAVAILABLE || e.code === GrpcStatus.DEADLINE_EXCEEDED)
    return new LoupeError(`the ${service} is unavailable; try again shortly`, 'UNAVAILABLE');
  // an RPC of the contract that this build of the service does not serve yet: its message says what to use
  if (e.code === GrpcStatus.UNIMPLEMENTED)
    return new LoupeError(`the ${service} does not serve this yet: ${e.details ?? ''}`, 'UNAVAILABLE');
  return new Error(`${service} failed with gRPC status ${e.code}: ${e.details ?? e.message}`);
}

/** Apollo's formatError: keeps known codes and messages, hides everything else. */
export function formatError(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    const base = { message: formatted.message, locations: formatted.locations, path: formatted.path };
    if (original instanceof LoupeError) {
      return {
        ...base,
        message: original.message,
        extensions: { code: FROM_LOUPE[original.code], reason: original.code },
      };
    }
    const code = String(formatted.extensions?.code ?? '');
    if (original instanceof GraphQLError && (OWN_CODES.has(code) || REQUEST_CODES.has(code)))
      return { ...base, extensions: { code } };
    log.error({ err: original, path: formatted.path }, 'internal error');
    return { ...base, message: 'internal error (see the gateway log)', extensions: { code: 'INTERNAL' } };
  };
}
