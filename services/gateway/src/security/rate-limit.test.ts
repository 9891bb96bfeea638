import { describe, expect, it } from 'vitest';
import { TokenBuckets } from './rate-limit.js';

describe('TokenBuckets', () => {
  it('lets a burst of twice the rate through, then one request per 1/rate seconds, per key', () => {
    let now = 0;
    const buckets = new TokenBuckets(5, () => now);
    const burst = Array.from({ length: 12 }, () => buckets.take('a'));
    expect(burst.slice(0, 10)).toEqual(new Array(10).fill(0));
    expect(burst[10]).toBeCloseTo(0.2, 10); // a token refills in 1/5 s
    expect(buckets.take('b')).toBe(0); // another key has its own bucket
    now += 200;
    expect(buckets.take('a')).toBe(0);
    expect(buckets.take('a')).toBeGreaterThan(0);
    now += 60_000; // refills up to the burst size, not beyond
    expect(Array.from({ length: 11 }, () => buckets.take('a')).filter((w) => w === 0)).toHaveLength(10);
  });
});
