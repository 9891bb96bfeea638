import { saeLensArchitecture } from './architectures/registry.js';
import type { Sae } from './sae-model.js';

/**
 * Plain-TypeScript encode and decode with SAELens' semantics, accumulating in float64. It is the
 * reference that imported SAEs and exports are checked against, and is fast enough for a few
 * thousand vectors; bulk work belongs in an ONNX graph.
 */

/**
 * How each input row is normalised on the way in, x' = (x − shift)·inScale, and the reconstruction
 * brought back on the way out, x̂ = x̂'·outScale + shift, as SAELens' run-time normalisation does:
 * constant_norm_rescale scales by √d_in / ‖x‖ (and back); layer_norm centres and divides by the
 * unbiased standard deviation plus 1e-5, and multiplies back by the standard deviation alone.
 */
export interface RowNorms {
  inScale: Float64Array;
  outScale: Float64Array;
  shift: Float64Array;
}

/** SAELens' layer_norm epsilon (run_time_activation_ln_in). */
const LAYER_NORM_EPS = 1e-5;

/** The normalisation of each row of inputs [rows, d_in] (all ones and zeros when the SAE has none). */
export function inputScales(sae: Sae, x: Float32Array, rows: number): RowNorms {
  const { dIn, normalizeActivations } = sae.config;
  const norms: RowNorms = {
    inScale: new Float64Array(rows).fill(1),
    outScale: new Float64Array(rows).fill(1),
    shift: new Float64Array(rows),
  };
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * dIn, (r + 1) * dIn);
    if (normalizeActivations === 'constant_norm_rescale') {
      let norm2 = 0;
      for (let j = 0; j < dIn; j++) norm2 += row[j] ** 2;
      norms.inScale[r] = Math.sqrt(dIn) / Math.sqrt(norm2);
      norms.outScale[r] = 1 / norms.inScale[r];
    } else if (normalizeActivations === 'layer_norm') {
      let sum = 0;
      for (let j = 0; j < dIn; j++) sum += row[j];
      const mean = sum / dIn;
      let squares = 0;
      for (let j = 0; j < dIn; j++) squares += (row[j] - mean) ** 2;
      // torch's x.std() is the unbiased one
      const std = Math.sqrt(squares / (dIn - 1));
      norms.shift[r] = mean;
      norms.inScale[r] = 1 / (std + LAYER_NORM_EPS);
      norms.outScale[r] = std;
    }
  }
  return norms;
}

/** Latent activations [rows, d_sae] of row-major inputs [rows, d_in]. */
export function encode(sae: Sae, x: Float32Array, rows: number): Float32Array {
  const { dIn, dSae, architecture, applyBDecToInput } = sae.config;
  const { W_enc, b_enc, b_dec } = sae.weights;
  const { activate } = saeLensArchitecture(architecture);
  const norms = inputScales(sae, x, rows);
  const out = new Float32Array(rows * dSae);
  const centred = new Float64Array(dIn);
  const pre = new Float64Array(dSae);
  for (let r = 0; r < rows; r++) {
    const { inScale, shift } = norms;
    for (let j = 0; j < dIn; j++)
      centred[j] = (x[r * dIn + j] - shift[r]) * inScale[r] - (applyBDecToInput ? b_dec[j] : 0);
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
export function decode(sae: Sae, acts: Float32Array, rows: number, norms?: RowNorms): Float32Array {
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
    const scale = norms ? norms.outScale[r] : 1;
    const shift = norms ? norms.shift[r] : 0;
    for (let j = 0; j < dIn; j++) out[r * dIn + j] = acc[j] * scale + shift;
  }
  return out;
}

/** encode then decode, with the input's normalisation undone. */
export function reconstruct(sae: Sae, x: Float32Array, rows: number): Float32Array {
  return decode(sae, encode(sae, x, rows), rows, inputScales(sae, x, rows));
}
