/**
 * Each neuron's k windows with the highest max activation, with their per-token values, in flat typed
 * arrays ([neuron, rank] and [neuron, rank, token]): inserting shifts a few slots in place and
 * allocates nothing, and the arrays are exactly what a checkpoint writes.
 */
export class TopWindows {
  /** max activation per slot; NaN where empty */
  readonly max: Float32Array;
  /** window index per slot; -1 where empty */
  readonly window: Int32Array;
  /** tokens per slot (a document's last window may be short) */
  readonly length: Int32Array;
  /** token values per slot, NaN past the window's length */
  readonly values: Float32Array;
  readonly count: Int32Array;

  constructor(
    readonly width: number,
    readonly k: number,
    readonly windowLength: number,
  ) {
    this.max = new Float32Array(width * k).fill(Number.NaN);
    this.window = new Int32Array(width * k).fill(-1);
    this.length = new Int32Array(width * k);
    this.values = new Float32Array(width * k * windowLength).fill(Number.NaN);
    this.count = new Int32Array(width);
  }

  /** Recomputes the per-neuron counts after the arrays were filled from a checkpoint. */
  recount(): void {
    const { k } = this;
    for (let j = 0; j < this.width; j++) {
      let c = 0;
      while (c < k && this.window[j * k + c] >= 0) c++;
      this.count[j] = c;
    }
  }

  /** True when a window with this max would enter neuron j's list. */
  admits(j: number, max: number): boolean {
    return this.count[j] < this.k || max > this.max[j * this.k + this.k - 1];
  }

  /**
   * Inserts a window into neuron j's list (descending max, ties by window index); `copy` writes its
   * `length` token values at `values[at..]`.
   */
  insert(
    j: number,
    max: number,
    window: number,
    length: number,
    copy: (values: Float32Array, at: number) => void,
  ): void {
    const { k, windowLength: L } = this;
    const base = j * k;
    let p = Math.min(this.count[j], k - 1);
    while (
      p > 0 &&
      (this.max[base + p - 1] < max || (this.max[base + p - 1] === max && this.window[base + p - 1] > window))
    )
      p--;
    const last = Math.min(this.count[j], k - 1);
    if (last > p) {
      this.max.copyWithin(base + p + 1, base + p, base + last);
      this.window.copyWithin(base + p + 1, base + p, base + last);
      this.length.copyWithin(base + p + 1, base + p, base + last);
      this.values.copyWithin((base + p + 1) * L, (base + p) * L, (base + last) * L);
    }
    this.max[base + p] = max;
    this.window[base + p] = window;
    this.length[base + p] = length;
    this.values.fill(Number.NaN, (base + p) * L, (base + p + 1) * L);
    copy(this.values, (base + p) * L);
    if (this.count[j] < k) this.count[j]++;
  }
}
