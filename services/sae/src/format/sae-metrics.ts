/**
 * Reconstruction quality of x̂ against x over many batches. FVU is centred: the residual's squared
 * error over the variance around the per-dimension mean, so a model that only learns the mean scores 1.
 */
export interface ReconstructionMetrics {
  vectors: number;
  /** mean over vectors of ‖x − x̂‖² / d */
  mse: number;
  fvu: number;
  explainedVariance: number;
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
    return {
      vectors: n,
      mse: this.squaredError / (n * this.width),
      fvu,
      explainedVariance: 1 - fvu,
      cosine: this.cosineSum / n,
    };
  }
}
