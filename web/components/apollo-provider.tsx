'use client';

import { HttpLink, split } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { ApolloClient, ApolloNextAppProvider, InMemoryCache } from '@apollo/client-integration-nextjs';
import { Kind, OperationTypeNode } from 'graphql';
import { createClient } from 'graphql-ws';
import type { ReactNode } from 'react';
import { persistedQueries } from '@/lib/persisted-queries';

/**
 * Apollo Client for the interactive pages: queries and mutations over this app's /graphql proxy,
 * subscriptions over graphql-ws straight to the gateway (`wsUrl` comes from the server's config).
 */
export function ApolloProvider(props: { wsUrl: string; children: ReactNode }) {
  const makeClient = () => {
    // hashed queries as GET: the browser's HTTP cache revalidates unit pages with the gateway's ETag
    const apq = persistedQueries({ get: true });
    const http = apq ? apq.concat(new HttpLink({ uri: '/graphql' })) : new HttpLink({ uri: '/graphql' });
    // no websocket while rendering on the server: subscriptions start in the browser only
    const link =
      typeof window === 'undefined'
        ? http
        : split(
            ({ query }) => {
              const definition = getMainDefinition(query);
              return (
                definition.kind === Kind.OPERATION_DEFINITION &&
                definition.operation === OperationTypeNode.SUBSCRIPTION
              );
            },
            new GraphQLWsLink(createClient({ url: props.wsUrl, retryAttempts: 3 })),
            http,
          );
    return new ApolloClient({
      cache: new InMemoryCache({ possibleTypes: { Unit: ['Neuron', 'Feature'] } }),
      link,
    });
  };
  return <ApolloNextAppProvider makeClient={makeClient}>{props.children}</ApolloNextAppProvider>;
}
