import { Gpt2Runner, logSoftmax } from '@loupe/model';
import type { Sae } from '@loupe/sae';
import { splicedLoss } from '@loupe/sae';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { convertedFixture } from '../support/model.js';

// SAE evaluation by splicing: CE loss recovered and KL against the clean model, on the tiny fixture.
let runner: Gpt2Runner;
const HOOK = 'blocks.0.hook_resid_pre';
let windows: number[][];

beforeAll(async () => {
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  runner = await Gpt2Runner.load(modelDir, { device: 'cpu', intraOpThreads: 1 });
  windows = [
    'The quick brown fox jumps over the lazy dog.',
    'Fellow citizens of the Senate and House of Representatives',
  ].map((t) => runner.tokenizer.encode(t));
});
afterAll(() => runner?.close());

/** A standard SAE with W_enc = [I, −I], W_dec = [I; −I]: relu(x) − relu(−x) = x, a perfect reconstruction. */
function identitySae(d: number, scale = 1): Sae {
  const W_enc = new Float32Array(d * 2 * d);
  const W_dec = new Float32Array(2 * d * d);
  for (let i = 0; i < d; i++) {
    W_enc[i * 2 * d + i] = 1;
    W_enc[i * 2 * d + d + i] = -1;
    W_dec[i * d + i] = scale;
    W_dec[(d + i) * d + i] = -scale;
  }
  return {
    config: {
      architecture: 'standard',
      dIn: d,
      dSae: 2 * d,
      hookName: HOOK,
      modelName: 'tiny',
      applyBDecToInput: true,
      normalizeActivations: 'none',
      activationScale: 1,
    },
    weights: { W_enc, b_enc: new Float32Array(2 * d), W_dec, b_dec: new Float32Array(d) },
  };
}

describe('spliced loss', () => {
  it('a perfect reconstruction recovers all of the loss with zero KL; a zero SAE recovers none', async () => {
    const d = runner.manifest.dims.dModel;
    const perfect = await splicedLoss(runner, identitySae(d), windows);
    expect(perfect.ceRecovered).toBeCloseTo(1, 4);
    expect(perfect.kl).toBeLessThan(1e-6);
    expect(perfect.zeroAblatedCe).toBeGreaterThan(perfect.cleanCe);
    const nothing = await splicedLoss(runner, identitySae(d, 0), windows);
    expect(nothing.ceRecovered).toBeCloseTo(0, 4);
    const half = await splicedLoss(runner, identitySae(d, 0.5), windows);
    expect(half.ceRecovered!).toBeGreaterThan(0);
    expect(half.ceRecovered!).toBeLessThan(1);
    expect(half.kl).toBeGreaterThan(1e-4);
  });

  it('reports the clean cross-entropy the model itself gives', async () => {
    const d = runner.manifest.dims.dModel;
    const result = await splicedLoss(runner, identitySae(d), windows);
    let total = 0;
    let count = 0;
    const V = runner.manifest.dims.vocabSize;
    for (const ids of windows) {
      const [out] = await runner.forward([{ ids, hooks: [], logits: true }]);
      for (let t = 0; t + 1 < ids.length; t++) {
        total -= logSoftmax(out.logits!.subarray(t * V, (t + 1) * V))[ids[t + 1]];
        count++;
      }
    }
    expect(result.tokens).toBe(count);
    expect(result.cleanCe).toBeCloseTo(total / count, 6);
  });

  it('refuses an SAE on a hook it cannot splice', async () => {
    const sae = identitySae(runner.manifest.dims.dModel);
    sae.config.hookName = 'blocks.0.hook_resid_post';
    await expect(splicedLoss(runner, sae, windows)).rejects.toThrow(
      /only blocks.\{L\}.hook_resid_pre SAEs can be spliced/,
    );
  });
});
