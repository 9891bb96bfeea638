import { CombinedGraphQLErrors } from '@apollo/client/errors';

/** The gateway's message and stable code for a failed query, for showing on the page. */
export function describeError(error: unknown): { code: string; message: string } {
  if (CombinedGraphQLErrors.is(error)) {
    const first = error.errors[0];
    return { code: String(first?.extensions?.code ?? 'ERROR'), message: first?.message ?? error.message };
  }
  return { code: 'UNAVAILABLE', message: error instanceof Error ? error.message : String(error) };
}
