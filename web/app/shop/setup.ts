import { graphql } from '@/lib/gql';
import type { ShopCollectionsQuery, ShopQuery, ShopQueryVariables, SteeringMode } from '@/lib/gql/graphql';

/**
 * A shop search and its URL form, so a search is shared by its link:
 * /shop?q=hiking+boots&k=10&unit=gpt2/res-6/17&strength=40&mode=ADD (one unit/strength/mode triple per
 * steered feature, in order; collection and sae only when not the defaults). The same names are the
 * search form's fields, so the form submits to this URL without JavaScript.
 */
export interface ShopSteer {
  unit: string;
  /** ADD: added × the feature's decoder row (> 0 boosts, < 0 suppresses); CLAMP: the value it is held at */
  strength: number;
  /** a feature is boosted / suppressed (ADD) or held at a value inside its SAE (CLAMP; 0 ablates it) */
  mode: ShopMode;
}

export const SHOP_MODES = ['ADD', 'CLAMP'] as const satisfies readonly SteeringMode[];
export type ShopMode = (typeof SHOP_MODES)[number];

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
/** The sliders' range for ADD: strength × the feature's decoder row is added to the query's residual stream. */
export const STRENGTH_MIN = -100;
export const STRENGTH_MAX = 100;
/** The sliders' range for CLAMP: the feature's activation (ReLU / JumpReLU: not negative) is held there. */
export const CLAMP_MIN = 0;
export const CLAMP_MAX = 100;

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

/** ADD at 0 steers nothing; CLAMP at 0 is an ablation, so it stays. */
export function steers(s: ShopSteer): boolean {
  return s.mode === 'CLAMP' || s.strength !== 0;
}

/** A URL's mode: ADD or CLAMP (ABLATE reads as CLAMP at 0), ADD when absent or unknown. */
function parseMode(value: string | undefined): { mode: ShopMode; ablate: boolean } {
  if (value === 'ABLATE') return { mode: 'CLAMP', ablate: true };
  return { mode: value === 'CLAMP' ? 'CLAMP' : 'ADD', ablate: false };
}

/** The search a URL's query describes; a slider that steers nothing (ADD at 0) is dropped. */
export function parseShopSetup(params: Params): ShopSetup {
  const units = all(params, 'unit');
  const strengths = all(params, 'strength');
  const modes = all(params, 'mode');
  return {
    query: (all(params, 'q')[0] ?? '').trim(),
    k: Math.trunc(finite(all(params, 'k')[0], DEFAULT_K)),
    collection: (all(params, 'collection')[0] ?? '').trim(),
    saeId: (all(params, 'sae')[0] ?? '').trim(),
    steering: units
      .map((unit, i) => {
        const { mode, ablate } = parseMode(modes[i]);
        return { unit: unit.trim(), strength: ablate ? 0 : finite(strengths[i], 0), mode };
      })
      .filter((s) => s.unit !== '' && steers(s)),
  };
}

export function shopQueryString(setup: ShopSetup): string {
  const query = new URLSearchParams();
  query.set('q', setup.query);
  if (setup.k !== DEFAULT_K) query.set('k', String(setup.k));
  if (setup.collection) query.set('collection', setup.collection);
  if (setup.saeId) query.set('sae', setup.saeId);
  for (const s of setup.steering) {
    if (!steers(s)) continue;
    query.append('unit', s.unit);
    query.append('strength', String(s.strength));
    query.append('mode', s.mode);
  }
  return query.toString();
}

export function shopVariables(setup: ShopSetup): ShopQueryVariables {
  const steering = setup.steering.filter(steers);
  return {
    query: setup.query,
    k: setup.k,
    ...(setup.collection ? { collection: setup.collection } : {}),
    ...(setup.saeId ? { saeId: setup.saeId } : {}),
    ...(steering.length > 0
      ? {
          steering: steering.map((s) =>
            s.mode === 'CLAMP' && s.strength === 0
              ? { unit: s.unit, mode: 'ABLATE' }
              : { unit: s.unit, strength: s.strength, mode: s.mode },
          ),
        }
      : {}),
  };
}

/** A feature with its best explanation, as the query's features and each result's shared ones show it. */
export const SHOP_FEATURE = graphql(`
  fragment ShopFeatureFields on Feature {
    id
    index
    explanations(first: 1) {
      edges {
        node {
          text
          baseline
        }
      }
    }
  }
`);

export const SHOP_CARD = graphql(`
  fragment ShopCard on ShopResult {
    rank
    id
    title
    price
    category
    attributes
    score
    why {
      queryValue
      resultValue
      feature {
        ...ShopFeatureFields
      }
    }
  }
`);

export const SHOP = graphql(`
  query Shop($query: String!, $steering: [SteeringEdit!], $k: Int, $collection: String, $saeId: ID) {
    shopSearch(query: $query, steering: $steering, k: $k, collection: $collection, saeId: $saeId) {
      saeChoice
      sae {
        id
        hook
      }
      collection {
        name
        hook
        count
      }
      queryFeatures {
        value
        tokens
        feature {
          ...ShopFeatureFields
        }
      }
      results {
        ...ShopCard
      }
      unsteered {
        ...ShopCard
      }
    }
  }
`);

export type ShopSearchData = ShopQuery['shopSearch'];

export const COLLECTIONS = graphql(`
  query ShopCollections {
    shopCollections {
      name
      hook
      count
    }
  }
`);

export type CollectionData = ShopCollectionsQuery['shopCollections'][number];
