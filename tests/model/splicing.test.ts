import { allHooks } from '@loupe/common';
import { Gpt2Runner } from '@loupe/model';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { convertedFixture, maxAbsDiff } from '../support/model.js';

// Per-position residual additions at blocks.L.hook_resid_pre: the mechanism SAE evaluation uses to
// splice a reconstruction in (as reconstruction − original) and to zero-ablate a hook.
let runner: Gpt2Runner;
let hooks: string[];
const LAYER = 1;
const resid = `blocks.${LAYER}.hook_resid_pre`;

beforeAll(async () => {
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
  hooks = allHooks(runner.manifest.dims.nLayer);
});
afterAll(() => runner?.close());

const ids = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13];

describe('per-position residual additions', () => {
  it('a delta of zeros at every position leaves every hook and the logits exactly as the clean run', async () => {
    const d = runner.manifest.dims.dModel;
    const [clean] = await runner.forward([{ ids, hooks, logits: true }]);
    const [spliced] = await runner.forward([
      {
        ids,
        hooks,
        logits: true,
        steering: [{ layer: LAYER, vector: new Float32Array(ids.length * d), strength: 1 }],
      },
    ]);
    for (const hook of hooks)
      expect(maxAbsDiff(spliced.hooks.get(hook)!, clean.hooks.get(hook)!), hook).toBe(0);
    expect(maxAbsDiff(spliced.logits!, clean.logits!)).toBe(0);
  });

  it('minus the clean residual zero-ablates the hook, and nothing upstream moves', async () => {
    const [clean] = await runner.forward([{ ids, hooks, logits: false }]);
    const minus = Float32Array.from(clean.hooks.get(resid)!, (v) => -v);
    const [ablated] = await runner.forward([
      { ids, hooks, logits: false, steering: [{ layer: LAYER, vector: minus, strength: 1 }] },
    ]);
    expect(Math.max(...Array.from(ablated.hooks.get(resid)!, Math.abs))).toBeLessThan(1e-6);
    for (const hook of hooks.slice(0, hooks.indexOf(resid)))
      expect(maxAbsDiff(ablated.hooks.get(hook)!, clean.hooks.get(hook)!)).toBe(0);
    expect(
      maxAbsDiff(
        ablated.hooks.get('ln_final.hook_normalized')!,
        clean.hooks.get('ln_final.hook_normalized')!,
      ),
    ).toBeGreaterThan(1e-2);
  });

  it('equals broadcast steering when every position gets the same vector, alone or batched with others', async () => {
    const d = runner.manifest.dims.dModel;
    const vector = Float32Array.from({ length: d }, (_, i) => Math.cos(i));
    const repeated = new Float32Array(ids.length * d);
    for (let t = 0; t < ids.length; t++) repeated.set(vector, t * d);
    const [broadcast] = await runner.forward([
      { ids, hooks, logits: true, steering: [{ layer: LAYER, vector, strength: 2 }] },
    ]);
    const batch = await runner.forward([
      { ids, hooks, logits: true, steering: [{ layer: LAYER, vector: repeated, strength: 2 }] },
      { ids: ids.slice(0, 4), hooks, logits: true, steering: [{ layer: LAYER, vector, strength: 2 }] },
      { ids: ids.slice(0, 6), hooks, logits: true },
    ]);
    const [shortBroadcast] = await runner.forward([
      { ids: ids.slice(0, 4), hooks, logits: true, steering: [{ layer: LAYER, vector, strength: 2 }] },
    ]);
    const [plainShort] = await runner.forward([{ ids: ids.slice(0, 6), hooks, logits: true }]);
    for (const hook of hooks) {
      expect(maxAbsDiff(batch[0].hooks.get(hook)!, broadcast.hooks.get(hook)!), hook).toBeLessThan(1e-5);
      expect(maxAbsDiff(batch[1].hooks.get(hook)!, shortBroadcast.hooks.get(hook)!), hook).toBeLessThan(1e-5);
      expect(maxAbsDiff(batch[2].hooks.get(hook)!, plainShort.hooks.get(hook)!), hook).toBeLessThan(1e-5);
    }
  });

  it('is causal: a delta at position t changes nothing before t', async () => {
    const d = runner.manifest.dims.dModel;
    const t = 6;
    const delta = new Float32Array(ids.length * d);
    // not a constant: LayerNorm would remove a shift along (1, …, 1)
    for (let i = 0; i < d; i++) delta[t * d + i] = i % 2 ? 3 : -3;
    const [clean] = await runner.forward([{ ids, hooks: ['ln_final.hook_normalized'], logits: false }]);
    const [patched] = await runner.forward([
      {
        ids,
        hooks: ['ln_final.hook_normalized'],
        logits: false,
        steering: [{ layer: LAYER, vector: delta, strength: 1 }],
      },
    ]);
    const a = clean.hooks.get('ln_final.hook_normalized')!;
    const b = patched.hooks.get('ln_final.hook_normalized')!;
    expect(maxAbsDiff(a.subarray(0, t * d), b.subarray(0, t * d))).toBe(0);
    expect(maxAbsDiff(a.subarray(t * d, (t + 1) * d), b.subarray(t * d, (t + 1) * d))).toBeGreaterThan(1e-2);
  });

  it('refuses a vector that is neither d_model nor tokens × d_model long', () => {
    expect(() =>
      runner.validate({
        ids,
        hooks: [],
        logits: true,
        steering: [{ layer: 0, vector: new Float32Array(65), strength: 1 }],
      }),
    ).toThrow(/has 65 values; d_model is 64 \(or 10 × 64 for one per position\)/);
  });
});
