import { describe, expect, it } from 'vitest';
import { generateCatalog } from './generator.js';
import { ndcgAtK, precisionAtK } from './metrics.js';
import { evalQueries, isRelevant } from './queries.js';

describe('ranking metrics against hand-computed cases', () => {
  it('precision@k counts relevant results among the first k, short lists included', () => {
    expect(precisionAtK([true, false, true, false], 4)).toBe(0.5);
    expect(precisionAtK([true, true, true], 2)).toBe(1);
    expect(precisionAtK([true], 10)).toBe(0.1);
    expect(precisionAtK([], 10)).toBe(0);
  });

  it('nDCG@k: [1,0,1] with 2 relevant = (1 + 1/log2 4) / (1 + 1/log2 3)', () => {
    const expected = (1 + 1 / 2) / (1 + 1 / Math.log2(3));
    expect(ndcgAtK([true, false, true], 2, 3)).toBeCloseTo(expected, 12);
    expect(ndcgAtK([true, false, true], 2, 3)).toBeCloseTo(0.9197207891481876, 12);
    // the ideal list scores 1; relevant products beyond k do not raise the ideal above k places
    expect(ndcgAtK([true, true], 50, 2)).toBe(1);
    expect(ndcgAtK([false, true], 1, 2)).toBeCloseTo(1 / Math.log2(3), 12);
    expect(ndcgAtK([false, false], 0, 2)).toBe(0);
  });
});

describe('evaluation queries', () => {
  it('ask for an attribute of a type that both has and lacks it in the catalog', () => {
    const products = generateCatalog({ products: 1000 });
    const queries = evalQueries(products);
    expect(queries.length).toBeGreaterThan(20);
    for (const q of queries) {
      expect(q.text).toBe(`${q.attributes[0]} ${q.productType}`);
      const ofType = products.filter((p) => p.productType === q.productType);
      const relevant = ofType.filter((p) => isRelevant(p, q)).length;
      expect(relevant).toBeGreaterThanOrEqual(3);
      expect(ofType.length - relevant).toBeGreaterThanOrEqual(3);
    }
    expect(evalQueries(generateCatalog({ products: 1000 }))).toEqual(queries);
  });
});
