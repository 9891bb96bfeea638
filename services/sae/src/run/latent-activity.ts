/** A latent is dense when it fires on more than this fraction of a window's tokens. */
export const DENSE_FIRING_FRACTION = 0.1;

/** LatentActivity's state, for checkpoints. */
export interface LatentActivityState {
  seen: number;
  lastFired: Float64Array;
  blockCounts: Float64Array;
  blockTokens: number;
  windowCounts: Float64Array;
  windowTokens: number;
}

/**
 * Dead and dense latents over a window of `window` tokens.
 *
 * Dead (reported): a latent is dead when it has not fired in the last `window` tokens, or since the start
 * while fewer tokens than that have been seen (so short runs still report latents that never fired,
 * instead of nothing until a window has passed). Dead (AuxK's mask, `deadMask`): sparsify's rule, no
 * firing in the last `window` tokens counted from the start, so nothing is dead before a window has
 * passed and a fresh latent gets a full window to start firing.
 *
 * Dense: fires on more than DENSE_FIRING_FRACTION of the tokens of the last complete window (tumbling,
 * back-to-back windows of ≥ `window` tokens, ending on a batch boundary), or of the tokens so far while no
 * window has completed. Tumbling windows keep the memory at two counts per latent, where a sliding one
 * would need a count per latent per batch in the window.
 */
export class LatentActivity {
  private lastFired: Float64Array;
  private seen = 0;
  private blockCounts: Float64Array;
  private blockTokens = 0;
  private windowCounts: Float64Array;
  private windowTokens = 0;

  constructor(
    readonly latents: number,
    readonly window: number,
  ) {
    // 0 stands for "not since the start"
    this.lastFired = new Float64Array(latents);
    this.blockCounts = new Float64Array(latents);
    this.windowCounts = new Float64Array(latents);
  }

  get tokens(): number {
    return this.seen;
  }

  /** Tokens the dense figure is over: the last complete window, else everything so far. */
  get denseWindowTokens(): number {
    return this.windowTokens > 0 ? this.windowTokens : this.blockTokens;
  }

  /** `counts[i]`: how many of the batch's `rows` vectors fired latent i. */
  record(counts: ArrayLike<number>, rows: number): void {
    this.seen += rows;
    this.blockTokens += rows;
    for (let i = 0; i < this.latents; i++) {
      if (counts[i] > 0) this.lastFired[i] = this.seen;
      this.blockCounts[i] += counts[i];
    }
    if (this.blockTokens >= this.window) {
      [this.windowCounts, this.blockCounts] = [this.blockCounts, this.windowCounts];
      this.windowTokens = this.blockTokens;
      this.blockCounts.fill(0);
      this.blockTokens = 0;
    }
  }

  deadFraction(): number {
    const since = this.seen - Math.min(this.window, this.seen);
    let dead = 0;
    for (let i = 0; i < this.latents; i++) if (this.lastFired[i] <= since) dead++;
    return dead / this.latents;
  }

  /** AuxK's mask: 1 for a latent silent over the last full window (none before a window has passed). */
  deadMask(): Uint8Array {
    const mask = new Uint8Array(this.latents);
    if (this.seen < this.window) return mask;
    const since = this.seen - this.window;
    for (let i = 0; i < this.latents; i++) if (this.lastFired[i] <= since) mask[i] = 1;
    return mask;
  }

  denseFraction(): number {
    const [counts, tokens] =
      this.windowTokens > 0 ? [this.windowCounts, this.windowTokens] : [this.blockCounts, this.blockTokens];
    if (tokens === 0) return 0;
    let dense = 0;
    for (let i = 0; i < this.latents; i++) if (counts[i] > DENSE_FIRING_FRACTION * tokens) dense++;
    return dense / this.latents;
  }

  snapshot(): LatentActivityState {
    return {
      seen: this.seen,
      lastFired: this.lastFired.slice(),
      blockCounts: this.blockCounts.slice(),
      blockTokens: this.blockTokens,
      windowCounts: this.windowCounts.slice(),
      windowTokens: this.windowTokens,
    };
  }

  restore(state: LatentActivityState): void {
    for (const array of [state.lastFired, state.blockCounts, state.windowCounts])
      if (array.length !== this.latents)
        throw new Error(`latent activity for ${array.length} latents, the trainer has ${this.latents}`);
    this.seen = state.seen;
    this.lastFired = state.lastFired.slice();
    this.blockCounts = state.blockCounts.slice();
    this.blockTokens = state.blockTokens;
    this.windowCounts = state.windowCounts.slice();
    this.windowTokens = state.windowTokens;
  }
}
