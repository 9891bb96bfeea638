/** A text's SAE features: feature index → its largest value over the text and the tokens it fires on. */
export type TextFeatures = Map<number, { value: number; tokens: number }>;

export interface Shared {
  feature: number;
  queryValue: number;
  resultValue: number;
}

/**
 * "Why this result": the features in both the query's and the result's top lists, in the query's order
 * (largest query value first). Both lists are cut to the same length, so a feature counts as shared
 * when it is among the strongest of each text, not merely non-zero somewhere in a long description.
 */
export function sharedFeatures(query: TextFeatures, result: TextFeatures): Shared[] {
  const shared: Shared[] = [];
  for (const [feature, q] of query) {
    const r = result.get(feature);
    if (r) shared.push({ feature, queryValue: q.value, resultValue: r.value });
  }
  return shared;
}
