/**
 * Mistakes a user can make (bad text, unknown hook, malformed checkpoint). Each carries a stable code
 * that the transports map once: gRPC status in the services, GraphQL error codes in the gateway,
 * exit status in the CLI. Anything that is not a LoupeError is a bug and is reported as internal.
 */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'UNKNOWN_HOOK'
  | 'UNKNOWN_MODEL'
  | 'NOT_FOUND'
  | 'TOO_LONG'
  | 'BAD_CHECKPOINT'
  | 'UNAVAILABLE'
  | 'CONFIG'
  /** a caller without the shared service token (LOUPE_SERVICE_TOKEN) */
  | 'UNAUTHENTICATED'
  /** the caller went away before the work finished: it was stopped */
  | 'CANCELLED'
  /** the work ran past its deadline and was stopped */
  | 'DEADLINE_EXCEEDED'
  /** too much at once from one client (expensive operations in flight, requests per second) */
  | 'RATE_LIMITED';

export class LoupeError extends Error {
  constructor(
    message: string,
    readonly code: ErrorCode,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class UserInputError extends LoupeError {
  constructor(message: string, code: ErrorCode = 'INVALID_ARGUMENT') {
    super(message, code);
  }
}

export class CheckpointError extends LoupeError {
  constructor(message: string) {
    super(message, 'BAD_CHECKPOINT');
  }
}

export class ConfigError extends LoupeError {
  constructor(message: string) {
    super(message, 'CONFIG');
  }
}
