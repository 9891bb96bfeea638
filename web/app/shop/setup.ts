/**
 * A shop search and its URL form, so a search is shared by its link:
 * /shop?q=hiking+boots&k=10&unit=gpt2/res-6/17&strength=40 (one unit/strength pair per steered feature;
 * collection and sae only when not the defaults). The same names are the search form's fields, so the
 * form submits to this URL without JavaScript.
 */
export interface ShopSteer {
  unit: string;
  strength: number;
}

export interface ShopSetup {
  query: string;
  k: number;
  /** '' = the gateway's default collection */
  collection: string;
  /** '' = the gateway's choice (the SAE on the collection's hook) */
  saeId: string;
  steering: ShopSteer[];
}

export const DEFAULT_K = 10;
/** The sliders' range: strength × the feature's decoder row is added to the query's residual stream. */
export const STRENGTH_MIN = -100;
export const STRENGTH_MAX = 100;

type Params = Record<string, string | string[] | undefined>;

function all(params: Params, key: string): string[] {
  const value = params[key];
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function finite(value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : fallback;
}

/** The search a URL's query describes; a slider left at 0 steers nothing and is dropped. */
export function parseShopSetup(params: Params): ShopSetup {
  const units = all(params, 'unit');
  const strengths = all(params, 'strength');
  return {
    query: (all(params, 'q')[0] ?? '').trim(),
    k: Math.trunc(finite(all(params, 'k')[0], DEFAULT_K)),
    collection: (all(params, 'collection')[0] ?? '').trim(),
    saeId: (all(params, 'sae')[0] ?? '').trim(),
    steering: units
      .map((unit, i) => ({ unit: unit.trim(), strength: finite(strengths[i], 0) }))
      .filter((s) => s.unit !== '' && s.strength !== 0),
  };
}

export function shopQueryString(setup: ShopSetup): string {
  const query = new URLSearchParams();
  query.set('q', setup.query);
  if (setup.k !== DEFAULT_K) query.set('k', String(setup.k));
  if (setup.collection) query.set('collection', setup.collection);
  if (setup.saeId) query.set('sae', setup.saeId);
  for (const s of setup.steering) {
    if (s.strength === 0) continue;
    query.append('unit', s.unit);
    query.append('strength', String(s.strength));
  }
  return query.toString();
}

export function shopVariables(setup: ShopSetup) {
  const steering = setup.steering.filter((s) => s.strength !== 0);
  return {
    query: setup.query,
    k: setup.k,
    ...(setup.collection ? { collection: setup.collection } : {}),
    ...(setup.saeId ? { saeId: setup.saeId } : {}),
    ...(steering.length > 0
      ? { steering: steering.map((s) => ({ unit: s.unit, strength: s.strength })) }
      : {}),
  };
}

const FEATURE = `feature { id index explanations(first: 1) { edges { node { text baseline } } } }`;

export const SHOP_QUERY = /* GraphQL */ `
  query Shop($query: String!, $steering: [SteeringEdit!], $k: Int, $collection: String, $saeId: ID) {
    shopSearch(query: $query, steering: $steering, k: $k, collection: $collection, saeId: $saeId) {
      saeChoice
      sae { id hook }
      collection { name hook count }
      queryFeatures { value tokens ${FEATURE} }
      results { ...ShopCard }
      unsteered { ...ShopCard }
    }
  }
  fragment ShopCard on ShopResult {
    rank
    id
    title
    price
    category
    attributes
    score
    why { queryValue resultValue ${FEATURE} }
  }
`;

export interface ShopFeatureData {
  id: string;
  index: number;
  explanations: { edges: { node: { text: string; baseline: boolean } }[] };
}

export interface ShopResultData {
  rank: number;
  id: string;
  title: string;
  price: number | null;
  category: string | null;
  attributes: string[];
  score: number;
  why: { queryValue: number; resultValue: number; feature: ShopFeatureData }[];
}

export interface ShopSearchData {
  saeChoice: 'ARGUMENT' | 'WORKSPACE' | 'HOOK' | 'NONE';
  sae: { id: string; hook: string } | null;
  collection: { name: string; hook: string; count: number };
  queryFeatures: { value: number; tokens: number; feature: ShopFeatureData }[];
  results: ShopResultData[];
  unsteered: ShopResultData[] | null;
}

export const COLLECTIONS_QUERY = /* GraphQL */ `
  query ShopCollections {
    shopCollections { name hook count }
  }
`;

export interface CollectionData {
  name: string;
  hook: string;
  count: number;
}
