import { LoupeError } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import type { GatewayContext } from '../graphql/context.js';
import {
  checkFeature,
  checkNeuron,
  formatUnitId,
  parseServedUnitId,
  parseUnitId,
  servedNeuronExample,
} from './unit-id.js';

describe('unit ids', () => {
  it('parses model/hook/index and formats it back', () => {
    const ref = parseUnitId('gpt2/blocks.6.mlp.hook_post/1234');
    expect(ref).toEqual({
      kind: 'neuron',
      model: 'gpt2',
      hook: 'blocks.6.mlp.hook_post',
      layer: 6,
      index: 1234,
    });
    expect(formatUnitId(ref)).toBe('gpt2/blocks.6.mlp.hook_post/1234');
  });

  it('reads any other middle part as an SAE id, hook-looking SAELens ids included', () => {
    for (const saeId of ['res-6-topk', 'blocks.6.hook_resid_pre', 'a:b_c.d', 'blocks.6.mlp.hook_post2']) {
      const ref = parseUnitId(`gpt2/${saeId}/17`);
      expect(ref).toEqual({ kind: 'feature', model: 'gpt2', saeId, index: 17 });
      expect(formatUnitId(ref)).toBe(`gpt2/${saeId}/17`);
    }
  });

  it('tells a malformed id (bad input) from one that names nothing (not found)', () => {
    for (const id of [
      'gpt2',
      'gpt2/blocks.6.mlp.hook_post',
      'gpt2/blocks.6.mlp.hook_post/-1',
      'a/b/c/1',
      '/h/1',
      'gpt2/sae id/1',
      `gpt2/${'x'.repeat(101)}/1`,
    ])
      expect(() => parseUnitId(id), id).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    const model = { name: 'tiny', nLayer: 2, dMlp: 256 };
    const neuron = (id: string) => {
      const ref = parseUnitId(id);
      if (ref.kind !== 'neuron') throw new Error(`${id} is not a neuron`);
      return ref;
    };
    expect(() => checkNeuron(neuron('tiny/blocks.1.mlp.hook_post/255'), model)).not.toThrow();
    for (const id of ['tiny/blocks.2.mlp.hook_post/0', 'tiny/blocks.0.mlp.hook_post/256'])
      expect(() => checkNeuron(neuron(id), model)).toThrow(
        new LoupeError(
          `unknown unit "${id}": model tiny has neurons tiny/blocks.{0-1}.mlp.hook_post/{0-255}`,
          'NOT_FOUND',
        ),
      );
    const sae = { id: 'res', model: 'tiny', dSae: 96 };
    const feature = (id: string) => {
      const ref = parseUnitId(id);
      if (ref.kind !== 'feature') throw new Error(`${id} is not a feature`);
      return ref;
    };
    expect(() => checkFeature(feature('tiny/res/95'), sae)).not.toThrow();
    expect(() => checkFeature(feature('tiny/res/96'), sae)).toThrow(
      new LoupeError('unknown unit "tiny/res/96": SAE "res" has features tiny/res/{0-95}', 'NOT_FOUND'),
    );
    expect(() => checkFeature(feature('gpt2/res/1'), sae)).toThrow(
      expect.objectContaining({ code: 'NOT_FOUND', message: expect.stringMatching(/belongs to model tiny/) }),
    );
  });

  it("suggests ids of the served model, which the capture service names, and gpt2's when it cannot", async () => {
    const served = (answer: Promise<{ name: string; nLayer: number }>) =>
      ({
        loaders: { modelInfo: { load: (key: string) => (key === '' ? answer : Promise.reject()) } },
      }) as unknown as GatewayContext;
    const tiny = served(Promise.resolve({ name: 'loupe-tiny', nLayer: 2 }));
    await expect(parseServedUnitId('loupe-tiny/blocks.1.mlp.hook_post/3', tiny)).resolves.toMatchObject({
      kind: 'neuron',
      index: 3,
    });
    await expect(parseServedUnitId('loupe-tiny/blocks.1', tiny)).rejects.toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message:
          'unit id "loupe-tiny/blocks.1" must be model/hook/index or model/sae-id/index, e.g. ' +
          'loupe-tiny/blocks.1.mlp.hook_post/0 (a neuron) or loupe-tiny/my-sae/17 (a feature of SAE my-sae)',
      }),
    );
    await expect(servedNeuronExample(tiny)).resolves.toBe('loupe-tiny/blocks.1.mlp.hook_post/0');
    const down = served(Promise.reject(new Error('capture is down')));
    await expect(parseServedUnitId('x', down)).rejects.toThrow(
      /e\.g\. gpt2\/blocks\.6\.mlp\.hook_post\/1234/,
    );
    await expect(servedNeuronExample(down)).resolves.toBe('gpt2/blocks.6.mlp.hook_post/0');
  });
});
