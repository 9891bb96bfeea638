import { parseUnitId } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { parseUnitSpec } from './unit-id.js';

describe('unit ids', () => {
  it('tells neurons (hook names) from SAE features (SAE ids)', () => {
    expect(parseUnitId('gpt2/blocks.6.mlp.hook_post/1234')).toEqual({
      kind: 'neuron',
      model: 'gpt2',
      hook: 'blocks.6.mlp.hook_post',
      layer: 6,
      index: 1234,
    });
    expect(parseUnitId('gpt2/gpt2:blocks.6.hook_resid_pre:ab12/7')).toMatchObject({
      kind: 'feature',
      saeId: 'gpt2:blocks.6.hook_resid_pre:ab12',
      index: 7,
    });
    expect(() => parseUnitId('gpt2/blocks.6.mlp.hook_post')).toThrow(/must be model\/hook\/index/);
    expect(() => parseUnitId('gpt2/x/-1')).toThrow(/must be model\/hook\/index/);
  });

  it('expands ranges and lists, in order, without duplicates', () => {
    expect(parseUnitSpec('m/blocks.0.mlp.hook_post/0-2,5; m/sae1/3,1,3')).toEqual([
      'm/blocks.0.mlp.hook_post/0',
      'm/blocks.0.mlp.hook_post/1',
      'm/blocks.0.mlp.hook_post/2',
      'm/blocks.0.mlp.hook_post/5',
      'm/sae1/3',
      'm/sae1/1',
    ]);
    expect(() => parseUnitSpec('m/blocks.0.mlp.hook_post/5-2')).toThrow(/"5-2" is not an index or a range/);
    expect(() => parseUnitSpec(' ; ')).toThrow(/names no units/);
  });
});
