import { saeLensArchitecture } from './architectures/registry.js';
import type { Sae } from './sae-model.js';

/**
 * Plain-TypeScript encode and decode with SAELens' semantics, accumulating in float64. It is the
 * reference that imported SAEs and exports are checked against, and is fast enough for a few
 * thousand vectors; bulk work belongs in an ONNX graph.
 */

/** Per-row factor of constant_norm_rescale (√d_in / ‖x‖), or 1 when the SAE does not normalise. */
export function inputScales(sae: Sae, x: Float32Array, rows: number): Float64Array {
  const { dIn, normalizeActivations } = sae.config;
  const scales = new Float64Array(rows).fill(1);
  if (normalizeActivations !== 'constant_norm_rescale') return scales;
  for (let r = 0; r < rows; r++) {
    let norm2 = 0;
    for (let j = 0; j < dIn; j++) norm2 += x[r * dIn + j] ** 2;
    scales[r] = Math.sqrt(dIn) / Math.sqrt(norm2);
  }
  return scales;
}

/** Latent activations [rows, d_sae] of row-major inputs [rows, d_in]. */
export function encode(sae: Sae, x: Float32Array, rows: number): Float32Array {
  const { dIn, dSae, architecture, applyBDecToInput } = sae.config;
  const { W_enc, b_enc, b_dec } = sae.weights;
  const { activate } = saeLensArchitecture(architecture);
  const scales = inputScales(sae, x, rows);
  const out = new Float32Array(rows * dSae);
  const centred = new Float64Array(dIn);
  const pre = new Float64Array(dSae);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dIn; j++) centred[j] = x[r * dIn + j] * scales[r] - (applyBDecToInput ? b_dec[j] : 0);
    for (let i = 0; i < dSae; i++) pre[i] = b_enc[i];
    for (let j = 0; j < dIn; j++) {
      const c = centred[j];
      if (c === 0) continue;
      const row = j * dSae;
      for (let i = 0; i < dSae; i++) pre[i] += c * W_enc[row + i];
    }
    activate(sae, pre, out.subarray(r * dSae, (r + 1) * dSae));
  }
  return out;
}

/** Reconstructions [rows, d_in] from latent activations [rows, d_sae], undoing input normalisation. */
export function decode(sae: Sae, acts: Float32Array, rows: number, scales?: Float64Array): Float32Array {
  const { dIn, dSae } = sae.config;
  const { W_dec, b_dec } = sae.weights;
  const out = new Float32Array(rows * dIn);
  const acc = new Float64Array(dIn);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dIn; j++) acc[j] = b_dec[j];
    for (let i = 0; i < dSae; i++) {
      const a = acts[r * dSae + i];
      if (a === 0) continue;
      for (let j = 0; j < dIn; j++) acc[j] += a * W_dec[i * dIn + j];
    }
    const s = scales ? scales[r] : 1;
    for (let j = 0; j < dIn; j++) out[r * dIn + j] = acc[j] / s;
  }
  return out;
}

/** encode then decode, with the input's normalisation undone. */
export function reconstruct(sae: Sae, x: Float32Array, rows: number): Float32Array {
  return decode(sae, encode(sae, x, rows), rows, inputScales(sae, x, rows));
}
