import { UserInputError } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { DynamicBatcher } from './batcher.js';
import type { ForwardRequest, ForwardResult } from './gpt2-runner.js';

const request = (length: number, logits = false): ForwardRequest => ({
  ids: new Array(length).fill(1),
  hooks: [],
  logits,
});

/** A fake forward pass that records its batches and answers each request with its own length. */
function harness(
  options = { maxBatchTokens: 100, windowMs: 1 },
  fail?: (batch: ForwardRequest[]) => boolean,
) {
  const batches: number[][] = [];
  const batcher = new DynamicBatcher(
    async (requests) => {
      batches.push(requests.map((r) => r.ids.length));
      await new Promise((r) => setTimeout(r, 5));
      if (fail?.(requests)) throw new Error('forward failed');
      return requests.map(
        (r): ForwardResult => ({ hooks: new Map([['len', Float32Array.of(r.ids.length)]]) }),
      );
    },
    (r) => {
      if (r.ids.length === 0) throw new UserInputError('empty input');
    },
    options,
  );
  return { batcher, batches };
}

describe('DynamicBatcher', () => {
  it('answers every request with its own result and shares forward passes within the token budget', async () => {
    const { batcher, batches } = harness();
    const lengths = [10, 30, 5, 40, 20, 60, 7];
    const results = await Promise.all(lengths.map((n) => batcher.submit(request(n))));
    expect(results.map((r) => r.hooks.get('len')![0])).toEqual(lengths);
    expect(batches.length).toBeLessThan(lengths.length);
    for (const batch of batches) {
      if (batch.length > 1) expect(Math.max(...batch) * batch.length).toBeLessThanOrEqual(100);
    }
    expect(batches.flat().sort((a, b) => a - b)).toEqual([...lengths].sort((a, b) => a - b));
  });

  it('always takes the oldest request, so a short one never waits behind a stream of long ones', async () => {
    const { batcher, batches } = harness({ maxBatchTokens: 100, windowMs: 1 });
    const first = batcher.submit(request(90));
    const short = batcher.submit(request(3));
    const long = [batcher.submit(request(95)), batcher.submit(request(95))];
    await Promise.all([first, short, ...long]);
    const shortBatch = batches.findIndex((b) => b.includes(3));
    expect(shortBatch).toBeLessThanOrEqual(1);
  });

  it('runs a request larger than the budget alone, and keeps logits and hook-only requests apart', async () => {
    const { batcher, batches } = harness();
    await Promise.all([
      batcher.submit(request(500)),
      batcher.submit(request(5, true)),
      batcher.submit(request(5)),
    ]);
    expect(batches).toContainEqual([500]);
    expect(batches.some((b) => b.length === 2 && b.includes(500))).toBe(false);
  });

  it('fails only the batch whose forward pass failed, and keeps serving', async () => {
    const { batcher } = harness({ maxBatchTokens: 10, windowMs: 1 }, (batch) =>
      batch.some((r) => r.ids.length === 9),
    );
    const bad = batcher.submit(request(9));
    const good = batcher.submit(request(8));
    await expect(bad).rejects.toThrow('forward failed');
    await expect(good).resolves.toBeDefined();
    await expect(batcher.submit(request(4))).resolves.toBeDefined();
  });

  it('refuses an invalid request before it can join a batch', async () => {
    const { batcher, batches } = harness();
    expect(() => batcher.submit(request(0))).toThrow('empty input');
    expect(batches).toEqual([]);
  });
});
