/** What encode answers, as the search page asks for it. */
export interface EncodingData {
  tokens: {
    token: { id: number; text: string };
    l0: number;
    features: { value: number; feature: { id: string; index: number } }[];
  }[];
  top: { maxValue: number; tokens: number; maxPosition: number; feature: { id: string; index: number } }[];
}

/**
 * One feature's value at every token of an encoded text (0 where it is not among the token's listed
 * features: zero, or below the perToken cut).
 */
export function featureValues(encoding: EncodingData, featureId: string): number[] {
  return encoding.tokens.map((t) => t.features.find((f) => f.feature.id === featureId)?.value ?? 0);
}
