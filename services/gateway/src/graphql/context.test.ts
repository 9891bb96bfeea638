import { createLogger } from '@loupe/common';
import DataLoader from 'dataloader';
import { describe, expect, it } from 'vitest';
import { each } from './context.js';

const log = createLogger('gateway-test', 'silent');

describe('request loaders', () => {
  it('load each distinct key once, settle keys on their own, and stop past maxKeys', async () => {
    const asked: string[] = [];
    const loader = new DataLoader(
      each(
        'FeatureStats',
        log,
        async (key: string) => {
          asked.push(key);
          if (key === 'bad') throw new Error('no such feature');
          return key.toUpperCase();
        },
        3,
      ),
    );
    const first = await Promise.allSettled(['a', 'b', 'a', 'bad'].map((k) => loader.load(k)));
    expect(first.map((r) => (r.status === 'fulfilled' ? r.value : r.reason.message))).toEqual([
      'A',
      'B',
      'A',
      'no such feature',
    ]);
    expect(asked).toEqual(['a', 'b', 'bad']);
    // cached keys cost nothing more; a fourth distinct key is over the limit and never asked for
    expect(await loader.load('b')).toBe('B');
    await expect(loader.load('c')).rejects.toMatchObject({
      code: 'TOO_LONG',
      message: expect.stringMatching(/asks for FeatureStats of more than 3 distinct units/),
    });
    expect(asked).toEqual(['a', 'b', 'bad']);
  });
});
