import { status } from '@grpc/grpc-js';
import { isDatabaseUnavailable } from '../db/connection-errors.js';
import { type ErrorCode, LoupeError } from '../errors.js';

/** The one mapping from Loupe's error codes to gRPC status codes, used by every service. */
export const GRPC_STATUS: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  UNKNOWN_HOOK: status.INVALID_ARGUMENT,
  TOO_LONG: status.INVALID_ARGUMENT,
  BAD_CHECKPOINT: status.FAILED_PRECONDITION,
  UNKNOWN_MODEL: status.NOT_FOUND,
  NOT_FOUND: status.NOT_FOUND,
  UNAVAILABLE: status.UNAVAILABLE,
  CONFIG: status.FAILED_PRECONDITION,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  CANCELLED: status.CANCELLED,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  RATE_LIMITED: status.RESOURCE_EXHAUSTED,
};

/** Loupe error code carried in gRPC metadata, so clients can recover the exact kind of mistake. */
export const ERROR_CODE_METADATA_KEY = 'loupe-error-code';

export interface GrpcErrorPayload {
  code: status;
  message: string;
  loupeCode: ErrorCode | 'INTERNAL';
}

/** Anything that is not a LoupeError is a bug: the client gets a generic message, the log gets the rest. */
export function toGrpcError(error: unknown): GrpcErrorPayload {
  if (error instanceof LoupeError)
    return { code: GRPC_STATUS[error.code], message: error.message, loupeCode: error.code };
  // the database went away under a request (restart, network): the client may retry, the service lives on
  if (isDatabaseUnavailable(error))
    return {
      code: status.UNAVAILABLE,
      message: 'the database is unavailable; try again shortly',
      loupeCode: 'UNAVAILABLE',
    };
  return { code: status.INTERNAL, message: 'internal error (see the service log)', loupeCode: 'INTERNAL' };
}
