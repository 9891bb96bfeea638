import type { SearchEncodeQuery } from '@/lib/gql/graphql';

/** What encode answers, as the search page asks for it. */
export type EncodingData = SearchEncodeQuery['encode'];

/**
 * One feature's value at every token of an encoded text (0 where it is not among the token's listed
 * features: zero, or below the perToken cut).
 */
export function featureValues(encoding: EncodingData, featureId: string): number[] {
  return encoding.tokens.map((t) => t.features.find((f) => f.feature.id === featureId)?.value ?? 0);
}
