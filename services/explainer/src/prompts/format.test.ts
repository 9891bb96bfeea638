import { describe, expect, it } from 'vitest';
import { parseExplanation } from './explain-prompt.js';
import { displayToken, formatRecords, normalizeActivations } from './format.js';

const rec = (tokens: string[], activations: number[], id = 'r') => ({ id, tokens, activations });

describe('normalizeActivations', () => {
  it('is floor(10·relu(a)/max) with max over all records shown (hand-computed)', () => {
    // max = 8 (second record): 4 → 5, 7.9 → floor(9.875) = 9, -3 → 0, 0.79 → floor(0.9875) = 0, 8 → 10
    expect(normalizeActivations([rec(['a', 'b', 'c'], [4, 7.9, -3]), rec(['d', 'e'], [0.79, 8])])).toEqual([
      [5, 9, 0],
      [0, 10],
    ]);
  });

  it('gives all zeros when max ≤ 0', () => {
    expect(normalizeActivations([rec(['a', 'b'], [-1, 0]), rec(['c'], [-0.5])])).toEqual([[0, 0], [0]]);
  });
});

describe('formatRecords', () => {
  it('writes token<TAB>activation lines between markers, no filtered listing when ≥ 20% fire', () => {
    // 1 of 5 values non-zero = exactly 20%: not "fewer than 20%", so no second listing.
    const text = formatRecords([rec(['The', ' cat', ' sat', ' on', ' it'], [0, 2, 0, 0, 0])]);
    expect(text).toBe('<start>\nThe\t0\n cat\t10\n sat\t0\n on\t0\n it\t0\n<end>');
  });

  it('adds a zero-filtered listing when fewer than 20% of values are non-zero', () => {
    const text = formatRecords([rec(['a', 'b', 'c', 'd', 'e', 'f'], [0, 0, 3, 0, 0, 0]), rec(['g'], [0])]);
    expect(text).toBe(
      '<start>\na\t0\nb\t0\nc\t10\nd\t0\ne\t0\nf\t0\n<end>\n\n<start>\ng\t0\n<end>' +
        '\n\nSame activations, but with all zeros filtered out:\n<start>\nc\t10\n<end>\n\n<start>\n<end>',
    );
  });

  it('escapes tabs and newlines inside tokens so each line stays one token', () => {
    expect(displayToken('a\tb\nc\\')).toBe('a\\tb\\nc\\\\');
    expect(formatRecords([rec(['\n', 'x'], [1, 1])])).toBe('<start>\n\\n\t10\nx\t10\n<end>');
  });
});

describe('parseExplanation', () => {
  it('keeps the first sentence after "Explanation:"', () => {
    expect(parseExplanation('Explanation: the word "cat". Also dogs.\nMore')).toBe('the word "cat".');
    expect(parseExplanation('  numbers in dates  ')).toBe('numbers in dates');
    expect(parseExplanation('')).toBe('');
  });
});
