import type { GraphQLError } from 'graphql';
import type { ApiKeys } from './api-key-guard.js';

/**
 * Reads closed by LOUPE_GATEWAY_PUBLIC_READS=false: every operation, queries and subscriptions
 * included, then needs a valid API key (UNAUTHENTICATED otherwise). With public reads (the default)
 * only mutations and job control ask for one, in their resolvers.
 */
/** The part of Apollo's request context this needs (typed structurally: two copies of @apollo/server are installed). */
interface RequestWithHeaders {
  request: { http?: { headers: { get(name: string): string | undefined | null } } };
}

export function readAccessPlugin(publicReads: boolean, apiKeys: ApiKeys) {
  return {
    async requestDidStart() {
      if (publicReads) return;
      return {
        // a GraphQLError thrown here reaches the client as the request's error, with its code
        async didResolveOperation({ request }: RequestWithHeaders) {
          await apiKeys.require(request.http?.headers.get('authorization') ?? undefined);
        },
      };
    },
  };
}

/** The same rule for graphql-ws subscriptions, which do not pass through Apollo's plugins. */
export async function subscriptionAccessErrors(
  publicReads: boolean,
  apiKeys: ApiKeys,
  authorization: string | undefined,
): Promise<GraphQLError[] | undefined> {
  if (publicReads) return undefined;
  try {
    await apiKeys.require(authorization);
    return undefined;
  } catch (error) {
    return [error as GraphQLError];
  }
}
