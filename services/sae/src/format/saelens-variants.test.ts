import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '@loupe/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  referenceSaeLensForward,
  refusedSaeLensVariants,
  type SaeLensVariant,
  saeLensVariants,
  VARIANT_D_IN,
  VARIANT_D_SAE,
  writeSaeLensVariant,
} from '../../testing/saelens-variants.js';
import { decode, encode, inputScales } from './sae-forward.js';
import { type ReadSaeLensOptions, readSaeLens, writeSaeLens } from './saelens.js';

/** What a release says outside the SAE's folder, as the variant records it. */
function outsideTheFolder(variant: SaeLensVariant): ReadSaeLensOptions {
  return { normScalingFactor: variant.normScalingFactor, centerWritingWeights: variant.centerWritingWeights };
}

// Every cfg.json layout published SAEs use, read by readSaeLens and run through Loupe's forward,
// against an independent float64 reading of SAELens' semantics (testing/saelens-variants.ts).

/**
 * Loupe's forward accumulates in float64 but stores weights, latents and outputs in float32, and
 * folding scales into the weights rounds them once more: each value carries a relative error of a
 * few float32 ulps (≈ 1e-7), so over sums of 8-16 terms of O(1) values 1e-5 relative is ample while
 * still far below any error of semantics (a missed b_dec, scale or threshold moves values by ≥ 1e-2).
 */
const TOL = 1e-5;
const ROWS = 6;

let scratch: string;
beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-saelens-variants-'));
});
afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

function inputs(name: string): Float32Array {
  // residual-stream-like: an offset and a spread, so that norms and b_dec both matter
  return Rng.derive(7, `test/saelens-variant-x/${name}`).normalFloat32(ROWS * VARIANT_D_IN, 0.5, 2);
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++)
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / (1 + Math.abs(expected[i])));
  expect(worst, what).toBeLessThan(TOL);
}

async function checkAgainstReference(
  variant: SaeLensVariant,
  dir: string,
  options: ReadSaeLensOptions,
): Promise<void> {
  const sae = await readSaeLens(dir, options);
  const x = inputs(variant.name);
  const ref = referenceSaeLensForward(variant, x, ROWS);
  // a decision (ReLU, threshold, top-k) this close to flipping could flip on rounding (≤ 1e-5 here)
  expect(ref.margin, `${variant.name}: decision margin`).toBeGreaterThan(1e-4);
  const acts = encode(sae, x, ROWS);
  expectClose(acts, ref.acts, `${variant.name}: latents`);
  expect(
    acts.some((a) => a > 0),
    `${variant.name}: some latents fire`,
  ).toBe(true);
  expectClose(
    decode(sae, acts, ROWS, inputScales(sae, x, ROWS)),
    ref.recon,
    `${variant.name}: reconstruction`,
  );
}

describe('SAELens cfg.json variants', () => {
  for (const variant of saeLensVariants()) {
    it(`${variant.name}: encodes and decodes as SAELens does`, async () => {
      const dir = path.join(scratch, variant.name);
      await writeSaeLensVariant(dir, variant);
      await checkAgainstReference(variant, dir, outsideTheFolder(variant));
    });
  }

  it('reads the hook, layer, model and widths each layout states, and fills in the rest', async () => {
    const byName = Object.fromEntries(saeLensVariants().map((v) => [v.name, v]));
    const read = async (name: string) => {
      const dir = path.join(scratch, `meta-${name}`);
      await writeSaeLensVariant(dir, byName[name]);
      return (await readSaeLens(dir, outsideTheFolder(byName[name]))).config;
    };
    expect(await read('bloom-pre6')).toMatchObject({
      architecture: 'standard',
      hookName: 'blocks.1.hook_resid_pre',
      modelName: 'gpt2-small',
      applyBDecToInput: true,
      normalizeActivations: 'none',
    });
    expect(await read('openai-topk-pre6')).toMatchObject({ architecture: 'topk', k: 5, modelName: null });
    expect(await read('bare-pre6')).toMatchObject({
      dIn: VARIANT_D_IN,
      dSae: VARIANT_D_SAE,
      modelName: null,
      hookName: 'blocks.1.hook_resid_pre',
    });
    // the norm scaling factor is folded in and remembered as the activation scale
    expect(await read('expected-average-pre6')).toMatchObject({
      normalizeActivations: 'none',
      activationScale: 2.5,
    });
  });

  it('writes a folded variant back out as a v6 folder that reads to the same semantics', async () => {
    for (const variant of saeLensVariants().filter(
      (v) => v.normScalingFactor || v.cfg.finetuning_scaling_factor,
    )) {
      const dir = path.join(scratch, `fold-${variant.name}`);
      await writeSaeLensVariant(dir, variant);
      const canonical = path.join(scratch, `canonical-${variant.name}`);
      await writeSaeLens(canonical, await readSaeLens(dir, outsideTheFolder(variant)));
      // no factor is needed any more: it is in the weights
      await checkAgainstReference(variant, canonical, {});
    }
  });

  for (const refused of refusedSaeLensVariants()) {
    it(`refuses ${refused.name}, naming the field and its value`, async () => {
      const dir = path.join(scratch, `refused-${refused.name}`);
      await writeSaeLensVariant(dir, refused);
      await expect(readSaeLens(dir)).rejects.toThrow(refused.message);
    });
  }

  it('refuses a norm scaling factor that is not a positive number', async () => {
    const variant = saeLensVariants().find((v) => v.name === 'expected-average-pre6')!;
    const dir = path.join(scratch, 'bad-factor');
    await writeSaeLensVariant(dir, variant);
    await expect(readSaeLens(dir, { normScalingFactor: -1 })).rejects.toThrow(
      /norm scaling factor must be a positive number, got -1/,
    );
  });
});
