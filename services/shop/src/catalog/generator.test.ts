import { describe, expect, it } from 'vitest';
import { catalogJsonl, generateCatalog, productMetadata } from './generator.js';
import { attributeSpec, TAXONOMY } from './taxonomy.js';

describe('generateCatalog', () => {
  it('is identical run to run for a seed, and differs for another seed', () => {
    const a = catalogJsonl(generateCatalog({ products: 500, seed: 7 }));
    const b = catalogJsonl(generateCatalog({ products: 500, seed: 7 }));
    expect(a).toBe(b);
    expect(a.split('\n')).toHaveLength(501);
    expect(catalogJsonl(generateCatalog({ products: 500, seed: 8 }))).not.toBe(a);
  });

  it('extends a smaller catalog with the same seed (product i does not depend on the size)', () => {
    const small = generateCatalog({ products: 50, seed: 3 });
    expect(generateCatalog({ products: 200, seed: 3 }).slice(0, 50)).toEqual(small);
  });

  it('makes title, description, category and attributes agree with the taxonomy', () => {
    const products = generateCatalog({ products: 2000 });
    const types = new Map(
      TAXONOMY.flatMap((c) => c.types.map((t) => [t.name, { category: c.name, type: t }])),
    );
    for (const p of products) {
      const entry = types.get(p.productType);
      expect(entry, p.productType).toBeDefined();
      const { category, type } = entry!;
      expect(p.category).toBe(category);
      expect(type.materials).toContain(p.material);
      expect(type.colours).toContain(p.colour);
      expect(type.sizes).toContain(p.size);
      expect(p.price).toBeGreaterThanOrEqual(type.price[0] - 1);
      expect(p.price).toBeLessThanOrEqual(type.price[1]);
      expect(new Set(p.attributes).size).toBe(p.attributes.length);
      for (const a of p.attributes) {
        expect(type.attributes).toContain(a);
        // every attribute is said in the text the model reads
        expect(p.description).toContain(attributeSpec(a).phrase);
      }
      expect(p.title.toLowerCase()).toContain(p.productType);
      expect(p.description).toContain(p.material);
      expect(p.text).toBe(`${p.title}. ${p.description}`);
      expect(JSON.parse(productMetadata(p))).not.toHaveProperty('text');
    }
    // variety: every product type and every attribute occur, and products carry 0-3 attributes
    expect(new Set(products.map((p) => p.productType)).size).toBe(types.size);
    const counts = new Set(products.map((p) => p.attributes.length));
    expect([...counts].sort()).toEqual([0, 1, 2, 3]);
    expect(new Set(products.map((p) => p.id)).size).toBe(products.length);
  });

  it('refuses sizes and seeds it cannot honour, naming the range', () => {
    expect(() => generateCatalog({ products: 200_000 })).toThrow(/1-100000 products/);
    expect(() => generateCatalog({ products: 1.5 })).toThrow(/catalog size/);
    expect(() => generateCatalog({ seed: -1 })).toThrow(/seed/);
  });
});
