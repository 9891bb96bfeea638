import { Rng } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { decode, encode, inputScales } from '../format/sae-forward.js';
import { SAE_ARCHITECTURES, type Sae } from '../format/sae-model.js';
import { randomSae } from './random-sae.js';
import { SaeEncoder } from './sae-encoder.js';

const settings = { device: 'cpu' as const, intraOpThreads: 1 };
const dIn = 16;
const dSae = 48;
const rows = 37;

function inputs(seed: number): Float32Array {
  return Rng.derive(seed, 'test/encoder-inputs').normalFloat32(rows * dIn, 0, 2);
}

/**
 * Latents agree with the float64 TS reference to 1e-4 absolute (float32 sums of 16 products of O(1)
 * values; the error is ~1e-6). A latent gated on or off differently (pre-activation within float32
 * rounding of 0 or of the threshold) would show up as a mismatch; these seeds have none.
 */
function expectClose(actual: Float32Array, expected: Float32Array, tol: number): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThan(tol);
}

describe('SaeEncoder', () => {
  for (const architecture of SAE_ARCHITECTURES) {
    for (const normalizeActivations of ['none', 'constant_norm_rescale', 'layer_norm'] as const) {
      it(`encodes like the TS reference: ${architecture}, ${normalizeActivations}`, async () => {
        const sae = randomSae(architecture, dIn, dSae, 7, { normalizeActivations, k: 5 });
        const x = inputs(1);
        const encoder = await SaeEncoder.open(sae, settings);
        const acts = await encoder.encode(x, rows);
        const expected = encode(sae, x, rows);
        expectClose(acts, expected, 1e-4);
        // Some latents fire and some do not, so the gate is exercised both ways.
        const firing = expected.filter((v) => v > 0).length;
        expect(firing).toBeGreaterThan(rows);
        expect(firing).toBeLessThan(rows * dSae);
        if (architecture === 'topk') {
          for (let r = 0; r < rows; r++) {
            expect(acts.subarray(r * dSae, (r + 1) * dSae).filter((v) => v > 0).length).toBeLessThanOrEqual(
              5,
            );
          }
        }
        const decoded = await encoder.decode(acts, rows);
        const norms = inputScales(sae, x, rows);
        const raw = decoded.map((v, i) => {
          const r = Math.floor(i / dIn);
          return v * norms.outScale[r] + norms.shift[r];
        });
        expectClose(raw, decode(sae, expected, rows, norms), 1e-3);
        await encoder.close();
      });
    }
  }

  it('skips b_dec when apply_b_dec_to_input is false', async () => {
    const sae: Sae = randomSae('standard', dIn, dSae, 9, { applyBDecToInput: false });
    sae.weights.b_dec = sae.weights.b_dec.map((v) => v * 50);
    const x = inputs(2);
    const encoder = await SaeEncoder.open(sae, settings);
    expectClose(await encoder.encode(x, rows), encode(sae, x, rows), 1e-4);
    await encoder.close();
  });

  it('rejects inputs of the wrong width, saying what it expected', async () => {
    const encoder = await SaeEncoder.open(randomSae('standard', dIn, dSae, 3), settings);
    await expect(encoder.encode(new Float32Array(dIn * 2 + 1), 2)).rejects.toThrow(
      /expected 2 rows of width 16 \(32 values\), got 33/,
    );
    expect(await encoder.encode(new Float32Array(0), 0)).toHaveLength(0);
    await encoder.close();
  });
});
