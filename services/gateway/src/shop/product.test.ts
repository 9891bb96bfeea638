import { describe, expect, it } from 'vitest';
import { productFields } from './product.js';

describe('productFields', () => {
  it('reads a catalog product', () => {
    const json = JSON.stringify({
      id: 'p1',
      title: 'Trail boots',
      price: 89.5,
      category: 'footwear',
      attributes: ['waterproof', 'cushioned'],
    });
    expect(productFields(json, 'Trail boots. Sturdy.')).toEqual({
      title: 'Trail boots',
      price: 89.5,
      category: 'footwear',
      attributes: ['waterproof', 'cushioned'],
    });
  });

  it('falls back to the text for documents without product metadata, never throwing', () => {
    const bare = { title: 'some text', price: null, category: null, attributes: [] };
    expect(productFields('', 'some text')).toEqual(bare);
    expect(productFields('not json', 'some text')).toEqual(bare);
    expect(productFields('[1,2]', 'some text')).toEqual(bare);
    expect(productFields('{"price":"12","attributes":["a",3]}', 'some text')).toEqual({
      ...bare,
      attributes: ['a'],
    });
  });
});
