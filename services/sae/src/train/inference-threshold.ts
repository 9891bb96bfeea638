/**
 * BatchTopK's inference threshold θ: an exponential moving average of each batch's smallest kept
 * activation. Bussmann et al. average that minimum over training; a moving average with a small rate
 * does the same while forgetting the early batches, whose activations had a different scale.
 */
export class RunningThreshold {
  private estimate: number | undefined;

  constructor(readonly rate = 0.01) {}

  /** Folds in one batch's minimum; a batch where nothing fired (+∞) carries no information. */
  observe(minKept: number): void {
    if (!Number.isFinite(minKept)) return;
    this.estimate =
      this.estimate === undefined ? minKept : this.estimate + this.rate * (minKept - this.estimate);
  }

  /** undefined until a batch has fired something */
  get value(): number | undefined {
    return this.estimate;
  }

  /** for checkpoints: the estimate travels with the parameters */
  restore(value: number | undefined): void {
    this.estimate = value;
  }
}
