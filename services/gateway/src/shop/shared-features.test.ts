import { describe, expect, it } from 'vitest';
import { sharedFeatures, type TextFeatures } from './shared-features.js';

const features = (pairs: [number, number][]): TextFeatures =>
  new Map(pairs.map(([f, value]) => [f, { value, tokens: 1 }]));

describe('sharedFeatures', () => {
  it('keeps exactly the features of both lists, in the query order, with both values', () => {
    const query = features([
      [7, 3],
      [2, 2.5],
      [9, 1],
    ]);
    const result = features([
      [9, 4],
      [5, 8],
      [7, 0.5],
    ]);
    expect(sharedFeatures(query, result)).toEqual([
      { feature: 7, queryValue: 3, resultValue: 0.5 },
      { feature: 9, queryValue: 1, resultValue: 4 },
    ]);
  });

  it('is empty when nothing is shared or a side has no features', () => {
    expect(sharedFeatures(features([[1, 1]]), features([[2, 1]]))).toEqual([]);
    expect(sharedFeatures(features([]), features([[2, 1]]))).toEqual([]);
  });
});
