/**
 * Reconstruction quality of x̂ against x over many batches. FVU is centred: the residual's squared
 * error over the variance around the per-dimension mean, so a model that only learns the mean scores 1;
 * `explainedVariance` is 1 − FVU. SAELens reports a different figure under the same name (see
 * `explainedVarianceSaelens`), so both are kept, each named for what it is.
 */
export interface ReconstructionMetrics {
  vectors: number;
  /** mean over vectors of ‖x − x̂‖² / d */
  mse: number;
  fvu: number;
  /** 1 − fvu: the centred explained variance */
  explainedVariance: number;
  /**
   * SAELens's `explained_variance` (sae_lens/evals.py): 1 − E‖x − x̂‖² / (E‖x‖² − m²), where m is the
   * mean of x² over tokens and dimensions. Not centred, so it rewards a learned offset, and on data
   * far from the origin the denominator can turn negative and the figure exceed 1.
   */
  explainedVarianceSaelens: number;
  /** mean cosine similarity of x̂ with x */
  cosine: number;
}

export class ReconstructionAccumulator {
  private vectors = 0;
  private squaredError = 0;
  private cosineSum = 0;
  private readonly sum: Float64Array;
  private readonly sumSquares: Float64Array;

  constructor(readonly width: number) {
    this.sum = new Float64Array(width);
    this.sumSquares = new Float64Array(width);
  }

  add(x: Float32Array, xHat: Float32Array, rows: number): void {
    const d = this.width;
    for (let r = 0; r < rows; r++) {
      let dot = 0;
      let nx = 0;
      let nh = 0;
      for (let j = 0; j < d; j++) {
        const a = x[r * d + j];
        const b = xHat[r * d + j];
        this.squaredError += (a - b) ** 2;
        this.sum[j] += a;
        this.sumSquares[j] += a * a;
        dot += a * b;
        nx += a * a;
        nh += b * b;
      }
      this.cosineSum += nx > 0 && nh > 0 ? dot / Math.sqrt(nx * nh) : 0;
    }
    this.vectors += rows;
  }

  result(): ReconstructionMetrics {
    const n = this.vectors;
    let variance = 0;
    for (let j = 0; j < this.width; j++) variance += this.sumSquares[j] - (this.sum[j] * this.sum[j]) / n;
    const fvu = variance > 0 ? this.squaredError / variance : Number.NaN;
    let sumSquares = 0;
    for (let j = 0; j < this.width; j++) sumSquares += this.sumSquares[j];
    const meanSquare = sumSquares / (n * this.width);
    const saeLensTotal = sumSquares / n - meanSquare * meanSquare;
    return {
      vectors: n,
      mse: this.squaredError / (n * this.width),
      fvu,
      explainedVariance: 1 - fvu,
      explainedVarianceSaelens: 1 - this.squaredError / n / saeLensTotal,
      cosine: this.cosineSum / n,
    };
  }
}
