/**
 * The geometric median of the rows of `batch` [rows, d]: the point minimising the sum of Euclidean
 * distances to them, by Weiszfeld's iteration from the mean, in float64. SAELens and Anthropic offer it
 * for b_dec: unlike the mean, a few outlying activations (the massive-norm tokens GPT-2 has at position 0)
 * barely move it. Rows closer than `eps` to the estimate are skipped in that step (Weiszfeld's weights
 * are 1/distance), which is the usual fix and leaves the fixed point unchanged.
 */
export function geometricMedian(
  batch: Float32Array,
  rows: number,
  d: number,
  options: { maxIterations?: number; tolerance?: number; eps?: number } = {},
): { median: Float32Array; iterations: number } {
  const maxIterations = options.maxIterations ?? 100;
  const tolerance = options.tolerance ?? 1e-6;
  const eps = options.eps ?? 1e-12;
  if (rows < 1) throw new Error('geometric median of no rows');
  let y = new Float64Array(d);
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) y[j] += batch[r * d + j] / rows;
  for (let iteration = 1; iteration <= maxIterations; iteration++) {
    const next = new Float64Array(d);
    let weights = 0;
    for (let r = 0; r < rows; r++) {
      let dist2 = 0;
      for (let j = 0; j < d; j++) dist2 += (batch[r * d + j] - y[j]) ** 2;
      const dist = Math.sqrt(dist2);
      if (dist < eps) continue;
      const w = 1 / dist;
      weights += w;
      for (let j = 0; j < d; j++) next[j] += w * batch[r * d + j];
    }
    if (weights === 0) break; // every row sits on the estimate: it is the median
    let moved2 = 0;
    let scale2 = 0;
    for (let j = 0; j < d; j++) {
      next[j] /= weights;
      moved2 += (next[j] - y[j]) ** 2;
      scale2 += next[j] ** 2;
    }
    y = next;
    if (Math.sqrt(moved2) <= tolerance * Math.max(1, Math.sqrt(scale2)))
      return { median: Float32Array.from(y), iterations: iteration };
  }
  return { median: Float32Array.from(y), iterations: maxIterations };
}
