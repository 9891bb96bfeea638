import { describe, expect, it } from 'vitest';
import { parsePooling, pool } from './pooling.js';

// 3 positions × width 2; position 0 is the <|endoftext|> prefix, never pooled
const values = Float32Array.from([1000, -1000, 1, 2, 3, 6]);

describe('pool', () => {
  it('mean: the average of the text positions, the prefix left out', () => {
    expect(Array.from(pool(values, 3, 2, 'mean'))).toEqual([2, 4]);
  });

  it('last: the final position', () => {
    expect(Array.from(pool(values, 3, 2, 'last'))).toEqual([3, 6]);
  });

  it('mean without skipping includes the prefix (what the prefix keeps out)', () => {
    // float32 output: exact up to float32 rounding of the float64 mean
    expect(Array.from(pool(values, 3, 2, 'mean', 0))).toEqual([
      Math.fround((1000 + 1 + 3) / 3),
      Math.fround((-1000 + 2 + 6) / 3),
    ]);
  });

  it('refuses a run with no text tokens and a malformed buffer', () => {
    expect(() => pool(values.subarray(0, 2), 1, 2, 'mean')).toThrow(/no tokens/);
    expect(() => pool(values, 2, 2, 'mean')).toThrow(/not 2 tokens × 2/);
  });

  it('parses pooling names, defaulting to mean', () => {
    expect(parsePooling('')).toBe('mean');
    expect(parsePooling('last')).toBe('last');
    expect(() => parsePooling('max')).toThrow(/unknown pooling "max": expected one of mean, last/);
  });
});
