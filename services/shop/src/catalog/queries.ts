import type { Product } from './generator.js';
import { TAXONOMY } from './taxonomy.js';

/** A labelled evaluation query: a relevant product is of `productType` and has every attribute. */
export interface EvalQuery {
  id: string;
  /** the full query, attribute words included ("waterproof hiking boots") */
  text: string;
  /** the query without the attribute ("hiking boots"): what steered search starts from */
  baseText: string;
  productType: string;
  attributes: string[];
}

/** Both sides must have at least this many products, or the query cannot tell them apart. */
const MIN_PER_SIDE = 3;

/**
 * One query per (product type, attribute) pair the catalog can answer: at least MIN_PER_SIDE products
 * of the type have the attribute and as many lack it. Ordered by taxonomy, so the set is as
 * deterministic as the catalog.
 */
export function evalQueries(products: readonly Product[]): EvalQuery[] {
  const queries: EvalQuery[] = [];
  for (const category of TAXONOMY) {
    for (const type of category.types) {
      const ofType = products.filter((p) => p.productType === type.name);
      for (const attribute of type.attributes) {
        const having = ofType.filter((p) => p.attributes.includes(attribute)).length;
        if (having < MIN_PER_SIDE || ofType.length - having < MIN_PER_SIDE) continue;
        queries.push({
          id: `${type.name}/${attribute}`,
          text: `${attribute} ${type.name}`,
          baseText: type.name,
          productType: type.name,
          attributes: [attribute],
        });
      }
    }
  }
  return queries;
}

/** Binary relevance: the right type with every required attribute. */
export function isRelevant(product: Pick<Product, 'productType' | 'attributes'>, query: EvalQuery): boolean {
  return (
    product.productType === query.productType && query.attributes.every((a) => product.attributes.includes(a))
  );
}
