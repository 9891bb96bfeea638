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
  it('a perfect reconstruction keeps the clean loss with zero KL; CE recovered follows its definition', async () => {
    const d = runner.manifest.dims.dModel;
    const perfect = await splicedLoss(runner, identitySae(d), windows);
    expect(perfect.splicedCe).toBeCloseTo(perfect.cleanCe, 6);
    expect(perfect.kl).toBeLessThan(1e-6);
    for (const scale of [0, 0.5, 1]) {
      const r = await splicedLoss(runner, identitySae(d, scale), windows);
      const gap = r.zeroAblatedCe - r.cleanCe;
      // a random model may lose nothing to zero ablation: then there is nothing to recover (null)
      if (gap > 0) expect(r.ceRecovered!).toBeCloseTo((r.zeroAblatedCe - r.splicedCe) / gap, 10);
      else expect(r.ceRecovered).toBeNull();
      if (scale < 1) expect(r.kl).toBeGreaterThan(1e-4);
    }
  });

  it('follows SAELens: BOS first, special tokens not spliced nor scored, KL over the last position too', async () => {
    const d = runner.manifest.dims.dModel;
    const V = runner.manifest.dims.vocabSize;
    const bos = runner.tokenizer.endOfTextId!;
    expect(bos).not.toBeNull();
    const result = await splicedLoss(runner, identitySae(d, 0.5), windows);
    // the same numbers from plain forward passes: x̂ = x/2, so the splice adds −x/2 at every
    // position but the BOS one, which keeps its activations
    let [clean, spliced, kl, ceCount, klCount] = [0, 0, 0, 0, 0];
    for (const text of windows) {
      const ids = [bos, ...text];
      const [run] = await runner.forward([{ ids, hooks: [HOOK], logits: true }]);
      const x = run.hooks.get(HOOK)!;
      const vector = Float32Array.from(x, (v, i) => (Math.floor(i / d) === 0 ? 0 : -v / 2));
      const [half] = await runner.forward([
        { ids, hooks: [], logits: true, steering: [{ layer: 0, vector, strength: 1 }] },
      ]);
      for (let t = 1; t < ids.length; t++) {
        const p = logSoftmax(run.logits!.subarray(t * V, (t + 1) * V));
        const q = logSoftmax(half.logits!.subarray(t * V, (t + 1) * V));
        for (let v = 0; v < V; v++) kl += Math.exp(p[v]) * (p[v] - q[v]);
        klCount++;
        if (t + 1 < ids.length) {
          clean -= p[ids[t + 1]];
          spliced -= q[ids[t + 1]];
          ceCount++;
        }
      }
    }
    expect(result.tokens).toBe(ceCount);
    expect(result.cleanCe).toBeCloseTo(clean / ceCount, 6);
    expect(result.splicedCe).toBeCloseTo(spliced / ceCount, 5);
    expect(result.kl).toBeCloseTo(kl / klCount, 6);
    // a window that already starts with BOS gets no second one
    const again = await splicedLoss(
      runner,
      identitySae(d, 0.5),
      windows.map((w) => [bos, ...w]),
    );
    expect(again).toEqual(result);
  });

  it('refuses an SAE on a hook it cannot splice', async () => {
    const sae = identitySae(runner.manifest.dims.dModel);
    sae.config.hookName = 'blocks.0.hook_resid_post';
    await expect(splicedLoss(runner, sae, windows)).rejects.toThrow(
      /only blocks.\{L\}.hook_resid_pre SAEs can be spliced/,
    );
  });
});
