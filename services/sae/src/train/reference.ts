import type { TopKParameters } from './init.js';
import type { TopKShape } from './topk-graph.js';

/**
 * An independent float64 TopK SAE loss in plain JavaScript, written from the definition rather than from
 * the graph, so gradient checks compare two implementations and not one with itself. Returns the loss
 * and, per row, how far the TopK selection and the ReLU signs are from changing under a small perturbation
 * (smallest gap between the k-th and (k+1)-th values, smallest |pre-activation|), and how many rows
 * have fewer than k positive latents (rows where the ReLU mask inside the TopK is exercised).
 */
export function referenceLoss(
  shape: TopKShape,
  p: TopKParameters | Record<keyof TopKParameters, Float64Array>,
  x: Float64Array | Float32Array,
  rows: number,
): { loss: number; minGap: number; minAbsPre: number; rowsBelowK: number } {
  const { d, m, k } = shape;
  let total = 0;
  let minGap = Number.POSITIVE_INFINITY;
  let minAbsPre = Number.POSITIVE_INFINITY;
  let rowsBelowK = 0;
  for (let b = 0; b < rows; b++) {
    const pre = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      let s = p.b_enc[i];
      for (let j = 0; j < d; j++) s += (x[b * d + j] - p.b_dec[j]) * p.W_enc[j * m + i];
      pre[i] = s;
    }
    const relu = Array.from(pre, (v) => Math.max(0, v));
    const order = relu.map((_, i) => i).sort((a, c) => relu[c] - relu[a]);
    const chosen = order.slice(0, k);
    // a tie among zeros does not matter: zero latents add nothing and get no gradient either way
    if (k < m && relu[order[k - 1]] > 0) minGap = Math.min(minGap, relu[order[k - 1]] - relu[order[k]]);
    if (relu[order[k - 1]] === 0) rowsBelowK++;
    for (let i = 0; i < m; i++) minAbsPre = Math.min(minAbsPre, Math.abs(pre[i]));
    for (let j = 0; j < d; j++) {
      let recon = p.b_dec[j];
      for (const i of chosen) recon += relu[i] * p.W_dec[i * d + j];
      total += (recon - x[b * d + j]) ** 2;
    }
  }
  return { loss: total / rows, minGap, minAbsPre, rowsBelowK };
}
