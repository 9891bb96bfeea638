/**
 * Dead latents over a window of tokens: a latent is dead when it has not fired in the last `window`
 * tokens, or since the start while fewer tokens than that have been seen (so short runs still report
 * latents that never fired, instead of nothing until a window has passed).
 */
export class LatentActivity {
  private readonly lastFired: Float64Array;
  private seen = 0;

  constructor(
    readonly latents: number,
    readonly window: number,
  ) {
    // 0 stands for "not since the start"
    this.lastFired = new Float64Array(latents);
  }

  get tokens(): number {
    return this.seen;
  }

  /** `counts[i]`: how many of the batch's `rows` vectors fired latent i. */
  record(counts: ArrayLike<number>, rows: number): void {
    this.seen += rows;
    for (let i = 0; i < this.latents; i++) if (counts[i] > 0) this.lastFired[i] = this.seen;
  }

  deadFraction(): number {
    const since = this.seen - Math.min(this.window, this.seen);
    let dead = 0;
    for (let i = 0; i < this.latents; i++) if (this.lastFired[i] <= since) dead++;
    return dead / this.latents;
  }
}
