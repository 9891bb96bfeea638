import { HttpLink } from '@apollo/client';
import { ApolloClient, InMemoryCache, registerApolloClient } from '@apollo/client-integration-nextjs';
import { gatewayUrl } from './config';

/**
 * One Apollo Client per server request (React Server Components render the first paint from it);
 * no cache across requests, so a page always shows what the gateway has now.
 */
export const { getClient, query } = registerApolloClient(
  () =>
    new ApolloClient({
      cache: new InMemoryCache({ possibleTypes: { Unit: ['Neuron', 'Feature'] } }),
      link: new HttpLink({ uri: gatewayUrl(), fetchOptions: { cache: 'no-store' } }),
    }),
);
