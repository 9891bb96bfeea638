import { describe, expect, it } from 'vitest';
import { topOverText, topPerToken } from './feature-summary.js';

// 3 tokens × 4 latents, worked by hand
const acts = Float32Array.from([0, 2, 0, 1, 0.5, 0, 3, 0.5, 0, 2, 0, 0]);

describe('feature summary of an encoded text', () => {
  it('keeps each token’s largest non-zero latents, ties to the lower index, with the L0 before the cut', () => {
    expect(topPerToken(acts, 3, 4, 2)).toEqual([
      {
        features: [
          { feature: 1, value: 2 },
          { feature: 3, value: 1 },
        ],
        l0: 2,
      },
      {
        features: [
          { feature: 2, value: 3 },
          { feature: 0, value: 0.5 },
        ],
        l0: 3,
      },
      { features: [{ feature: 1, value: 2 }], l0: 1 },
    ]);
  });

  it('ranks latents by their max over the text, with where it was and on how many tokens they fired', () => {
    expect(topOverText(acts, 3, 4, 3)).toEqual([
      { feature: 2, maxValue: 3, tokens: 1, maxPosition: 1 },
      { feature: 1, maxValue: 2, tokens: 2, maxPosition: 0 },
      { feature: 3, maxValue: 1, tokens: 2, maxPosition: 0 },
    ]);
  });

  it('leaves out latents that never fired and negative values', () => {
    expect(topOverText(Float32Array.from([0, -1, 0, 0]), 2, 2, 5)).toEqual([]);
  });
});
