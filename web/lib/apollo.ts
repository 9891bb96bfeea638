import { HttpLink } from '@apollo/client';
import { ApolloClient, InMemoryCache, registerApolloClient } from '@apollo/client-integration-nextjs';
import { headers } from 'next/headers';
import { gatewayUrl } from './config';
import { persistedQueries } from './persisted-queries';

/**
 * fetch with the browser's address passed on as x-forwarded-for, so the gateway's per-client limits
 * count the person behind a page, not the web server every page is rendered on.
 */
async function fetchForClient(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  // outside a request (a build step) there are no headers to pass on
  const forwarded = await headers().then(
    (h) => h.get('x-forwarded-for'),
    () => null,
  );
  if (!forwarded) return fetch(input, init);
  const sent = new Headers(init?.headers);
  sent.set('x-forwarded-for', forwarded);
  return fetch(input, { ...init, headers: sent });
}

/** Hashes instead of query texts (POST: this server keeps no HTTP cache for a GET to revalidate). */
function withPersistedQueries(http: HttpLink) {
  const apq = persistedQueries({ get: false });
  return apq ? apq.concat(http) : http;
}

/**
 * One Apollo Client per server request (React Server Components render the first paint from it);
 * no cache across requests, so a page always shows what the gateway has now.
 */
export const { getClient, query } = registerApolloClient(
  () =>
    new ApolloClient({
      cache: new InMemoryCache({
        possibleTypes: {
          Unit: ['Neuron', 'Feature'],
          Job: ['CaptureJob', 'TrainingJob', 'ScoringJob'],
        },
      }),
      link: withPersistedQueries(
        new HttpLink({ uri: gatewayUrl(), fetchOptions: { cache: 'no-store' }, fetch: fetchForClient }),
      ),
    }),
);
