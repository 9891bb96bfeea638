import { type DocumentNode, type ExecutionResult, type FormattedExecutionResult, parse } from 'graphql';
import { LIMITS } from '../limits/limits.js';
import { limitErrors } from '../limits/query-limits.js';
import type { formatError } from './errors.js';

type Format = ReturnType<typeof formatError>;

/**
 * Hooks for graphql-ws, which serves subscriptions without Apollo: the same depth and cost limits as
 * HTTP requests get from validation, and errors with the same codes and messages (an unknown job fails
 * the subscribe step, which graphql-ws sends as a result; a service that goes away mid-stream is an
 * error inside a pushed result).
 */
export function graphqlWsHooks(format: Format) {
  return {
    /** depth and cost limits, as HTTP requests get them from validation */
    onSubscribe: (_ctx: unknown, _id: string, payload: { query: string }) => {
      let document: DocumentNode;
      try {
        document = parse(payload.query);
      } catch {
        return undefined; // graphql-ws reports the syntax error itself
      }
      const errors = limitErrors(document, LIMITS);
      return errors.length ? errors : undefined;
    },
    onNext: (
      _ctx: unknown,
      _id: string,
      _payload: unknown,
      _args: unknown,
      result: ExecutionResult,
    ): FormattedExecutionResult | undefined =>
      result.errors ? { ...result, errors: result.errors.map((e) => format(e.toJSON(), e)) } : undefined,
  };
}
