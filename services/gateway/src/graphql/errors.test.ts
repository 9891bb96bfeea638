import { Metadata, status } from '@grpc/grpc-js';
import { createLogger, LoupeError, UserInputError } from '@loupe/common';
import { ERROR_CODE_METADATA_KEY } from '@loupe/common/grpc';
import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { formatError, fromServiceError, unauthenticated } from './errors.js';

const format = formatError(createLogger('gateway-test', 'silent'));

/** What graphql-js makes of an error thrown in a resolver. */
function located(error: Error): GraphQLError {
  return new GraphQLError(error.message, { path: ['unit'], originalError: error });
}

function grpcError(code: status, details: string, loupeCode?: string) {
  const metadata = new Metadata();
  if (loupeCode) metadata.set(ERROR_CODE_METADATA_KEY, loupeCode);
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata });
}

describe('errors as clients see them', () => {
  it('maps Loupe error codes to stable GraphQL codes, keeping the message and the exact kind', () => {
    const cases: [LoupeError, string][] = [
      [new UserInputError('text is empty'), 'BAD_USER_INPUT'],
      [new UserInputError('too long', 'TOO_LONG'), 'BAD_USER_INPUT'],
      [new LoupeError('unknown model "x"', 'UNKNOWN_MODEL'), 'NOT_FOUND'],
      [new LoupeError('down', 'UNAVAILABLE'), 'UNAVAILABLE'],
    ];
    for (const [error, code] of cases) {
      const graphqlError = located(error);
      expect(format(graphqlError.toJSON(), graphqlError)).toEqual({
        message: error.message,
        path: ['unit'],
        locations: undefined,
        extensions: { code, reason: error.code },
      });
    }
    const auth = located(unauthenticated('needs a key'));
    expect(format(auth.toJSON(), auth).extensions).toEqual({ code: 'UNAUTHENTICATED' });
  });

  it('shows a bug as INTERNAL with no message, stack or address from it', () => {
    const bug = located(new TypeError('cannot read x of undefined at 10.0.0.5:50051'));
    const formatted = format(
      { ...bug.toJSON(), extensions: { code: 'INTERNAL_SERVER_ERROR', stacktrace: ['at x'] } },
      bug,
    );
    expect(formatted).toEqual({
      message: 'internal error (see the gateway log)',
      path: ['unit'],
      locations: undefined,
      extensions: { code: 'INTERNAL' },
    });
  });

  it('passes a service’s own error on, and hides the address of one it could not reach', () => {
    const own = fromServiceError(
      grpcError(status.INVALID_ARGUMENT, 'unknown hook "x"', 'UNKNOWN_HOOK'),
      'capture service',
    );
    expect(own).toEqual(new LoupeError('unknown hook "x"', 'UNKNOWN_HOOK'));
    const down = fromServiceError(
      grpcError(
        status.UNAVAILABLE,
        'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:50051',
      ),
      'capture service',
    );
    expect(down).toEqual(
      new LoupeError('the capture service is unavailable; try again shortly', 'UNAVAILABLE'),
    );
    const later = fromServiceError(
      grpcError(status.UNIMPLEMENTED, 'Train: not served yet; use `loupe sae train`'),
      'SAE service',
    );
    expect(later).toEqual(
      new LoupeError(
        'the SAE service does not serve this yet: Train: not served yet; use `loupe sae train`',
        'UNAVAILABLE',
      ),
    );
    const odd = fromServiceError(grpcError(status.INTERNAL, 'boom'), 'capture service');
    expect(odd).not.toBeInstanceOf(LoupeError);
  });
});
