import { ApolloProvider } from '@/components/apollo-provider';
import { ShopSearch } from '@/components/shop-search';
import { query } from '@/lib/apollo';
import { gatewayWsUrl } from '@/lib/config';
import { describeError } from '@/lib/graphql-errors';
import {
  COLLECTIONS,
  type CollectionData,
  parseShopSetup,
  SHOP,
  type ShopSearchData,
  shopQueryString,
  shopVariables,
} from './setup';

export const dynamic = 'force-dynamic';

/** The collections to choose from; the search still works (and says what is wrong) when listing fails. */
async function collections(): Promise<CollectionData[] | undefined> {
  try {
    return (await query({ query: COLLECTIONS, fetchPolicy: 'no-cache' })).data?.shopCollections;
  } catch {
    return undefined;
  }
}

/**
 * Explainable, steerable product search. The URL holds the search and its steering: the server renders
 * the results on first paint (without JavaScript the form submits back here); with JavaScript the
 * client re-runs the search in place as sliders move.
 */
export default async function ShopPage(props: {
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const setup = parseShopSetup(await props.searchParams);
  const listed = collections();
  let result: ShopSearchData | undefined;
  let error: { code: string; message: string } | undefined;
  if (setup.query !== '') {
    try {
      // no-cache: steered and unsteered results of one product share an id but not a rank or score
      result = (await query({ query: SHOP, variables: shopVariables(setup), fetchPolicy: 'no-cache' })).data
        ?.shopSearch;
    } catch (failure) {
      error = describeError(failure);
    }
  }
  return (
    <>
      <h1>Shop</h1>
      <p className="muted">
        Product search on the model's own representation: each product is embedded as its pooled activations
        at one hook, and so is your query. The query's SAE features say what the model saw; steer them to see
        how the results move, and open “why” on a result for the features it shares with the query.
      </p>
      <ApolloProvider wsUrl={gatewayWsUrl()}>
        <ShopSearch
          // a link to another search (the examples) keeps this route: start over from its answer
          key={shopQueryString(setup)}
          initialSetup={setup}
          initialResult={result}
          initialError={error}
          collections={await listed}
        />
      </ApolloProvider>
    </>
  );
}
