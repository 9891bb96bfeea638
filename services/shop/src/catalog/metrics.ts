/**
 * Ranking metrics with binary relevance. `ranked[i]` says whether the result at rank i + 1 is relevant.
 */

/** Relevant results among the first k, divided by k (a short list counts its missing places as misses). */
export function precisionAtK(ranked: readonly boolean[], k: number): number {
  checkK(k);
  let hits = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) if (ranked[i]) hits++;
  return hits / k;
}

/**
 * nDCG@k: DCG = Σ rel_i / log2(i + 1) over ranks i = 1..k, divided by the DCG of the ideal list (every
 * one of `totalRelevant` relevant products first). 0 when nothing is relevant.
 */
export function ndcgAtK(ranked: readonly boolean[], totalRelevant: number, k: number): number {
  checkK(k);
  let dcg = 0;
  for (let i = 0; i < Math.min(k, ranked.length); i++) if (ranked[i]) dcg += 1 / Math.log2(i + 2);
  let ideal = 0;
  for (let i = 0; i < Math.min(k, totalRelevant); i++) ideal += 1 / Math.log2(i + 2);
  return ideal === 0 ? 0 : dcg / ideal;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a whole number ≥ 1, got ${k}`);
}
