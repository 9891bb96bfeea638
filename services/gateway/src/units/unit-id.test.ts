import { LoupeError } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { checkNeuron, formatUnitId, parseUnitId } from './unit-id.js';

describe('unit ids', () => {
  it('parses model/hook/index and formats it back', () => {
    const ref = parseUnitId('gpt2/blocks.6.mlp.hook_post/1234');
    expect(ref).toEqual({ model: 'gpt2', hook: 'blocks.6.mlp.hook_post', layer: 6, index: 1234 });
    expect(formatUnitId(ref)).toBe('gpt2/blocks.6.mlp.hook_post/1234');
  });

  it('tells a malformed id (bad input) from one that names nothing (not found)', () => {
    for (const id of [
      'gpt2',
      'gpt2/blocks.6.mlp.hook_post',
      'gpt2/blocks.6.mlp.hook_post/-1',
      'a/b/c/1',
      '/h/1',
    ])
      expect(() => parseUnitId(id), id).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => parseUnitId('gpt2/blocks.6.hook_resid_post/3')).toThrow(
      expect.objectContaining({
        code: 'NOT_FOUND',
        message: expect.stringMatching(/neurons live on blocks/),
      }),
    );
    const model = { name: 'tiny', nLayer: 2, dMlp: 256 };
    expect(() => checkNeuron(parseUnitId('tiny/blocks.1.mlp.hook_post/255'), model)).not.toThrow();
    for (const id of ['tiny/blocks.2.mlp.hook_post/0', 'tiny/blocks.0.mlp.hook_post/256'])
      expect(() => checkNeuron(parseUnitId(id), model)).toThrow(
        new LoupeError(
          `unknown unit "${id}": model tiny has neurons tiny/blocks.{0-1}.mlp.hook_post/{0-255}`,
          'NOT_FOUND',
        ),
      );
  });
});
