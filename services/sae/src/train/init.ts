import { Rng } from '@loupe/common';
import { geometricMedian } from './geometric-median.js';
import type { TopKParam } from './topk-graph.js';

export type TopKParameters = Record<TopKParam, Float32Array>;

/**
 * Initial TopK SAE parameters: decoder rows are random unit vectors (a normalised Gaussian is uniform on
 * the sphere), the encoder is the decoder's transpose so each latent starts by reading the direction it
 * writes, b_enc = 0, and b_dec is the mean of a first batch so the encoder sees centred data from step 1.
 * `decoderNorm` scales the rows for architectures whose decoder norms are free (ReLU-L1 starts them small,
 * following Anthropic's April 2024 update, so the initial reconstruction is not dominated by m latents).
 */
export function initTopK(
  shape: { d: number; m: number },
  seed: number,
  firstBatch: Float32Array,
  batchSize: number,
  decoderNorm = 1,
): TopKParameters {
  const { d, m } = shape;
  const rng = Rng.derive(seed, 'sae/W_dec');
  const wDec = new Float32Array(m * d);
  for (let row = 0; row < m; row++) {
    const v = rng.normalFloat32(d, 0, 1);
    let norm = 0;
    for (const value of v) norm += value * value;
    norm = Math.sqrt(norm);
    for (let j = 0; j < d; j++) wDec[row * d + j] = (decoderNorm * v[j]) / norm;
  }
  const wEnc = new Float32Array(d * m);
  for (let row = 0; row < m; row++) {
    for (let j = 0; j < d; j++) wEnc[j * m + row] = wDec[row * d + j];
  }
  return { W_enc: wEnc, b_enc: new Float32Array(m), W_dec: wDec, b_dec: batchMean(firstBatch, batchSize, d) };
}

/** How b_dec starts: the first batch's mean, or its geometric median (robust to outlying vectors). */
export type BDecInit = 'mean' | 'geometric-median';
export const B_DEC_INITS: readonly BDecInit[] = ['mean', 'geometric-median'];

export function decoderBias(kind: BDecInit, batch: Float32Array, rows: number, d: number): Float32Array {
  return kind === 'geometric-median' ? geometricMedian(batch, rows, d).median : batchMean(batch, rows, d);
}

/** Column means in float64, so the result does not depend on summation order subtleties in float32. */
export function batchMean(batch: Float32Array, rows: number, d: number): Float32Array {
  const sum = new Float64Array(d);
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) sum[j] += batch[r * d + j];
  return Float32Array.from(sum, (s) => s / rows);
}
