import { describe, expect, it } from 'vitest';
import { approximateBytes, ByteLru } from './byte-lru.js';

describe('ByteLru', () => {
  it('evicts the least recently used entries until the bytes fit, and keeps nothing over budget', () => {
    const lru = new ByteLru<string, string>(100);
    lru.set('a', 'A', 40);
    lru.set('b', 'B', 40);
    expect(lru.get('a')).toBe('A'); // a is now the most recently used
    lru.set('c', 'C', 40); // 120 > 100: b, the least recently used, goes
    expect(lru.get('b')).toBeUndefined();
    expect([lru.get('a'), lru.get('c')]).toEqual(['A', 'C']);
    expect(lru.bytes).toBe(80);
    lru.set('a', 'A2', 10); // replacing an entry replaces its bytes
    expect(lru.bytes).toBe(50);
    lru.set('huge', 'H', 101);
    expect(lru.get('huge')).toBeUndefined();
    expect(lru.size).toBe(2);
    expect({ hits: lru.hits, misses: lru.misses }).toEqual({ hits: 3, misses: 2 });
  });
});

describe('approximateBytes', () => {
  it('grows with the strings and numbers a value holds', () => {
    const small = approximateBytes({ values: [1, 2], tokens: ['a'] });
    const large = approximateBytes({ values: new Array(1000).fill(1), tokens: new Array(1000).fill('abcd') });
    expect(large).toBeGreaterThan(1000 * (8 + 8) + 1000 * (8 + 16 + 8));
    expect(small).toBeLessThan(large / 100);
  });
});
