/**
 * Each neuron's k windows with the highest max activation, with their per-token values. The ranked
 * arrays ([neuron, rank]) are what a checkpoint writes; the token values live in fixed physical slots
 * ([neuron, slot, token]) reached through `slot`, so an insert shifts a few numbers per rank instead of
 * k windows of token values (at GPT-2 widths a small job inserts millions of times). Nothing is allocated
 * after construction.
 */
export class TopWindows {
  /** max activation per rank; NaN where empty */
  readonly max: Float32Array;
  /** window index per rank; -1 where empty */
  readonly window: Int32Array;
  /** tokens per rank (a document's last window may be short) */
  readonly length: Int32Array;
  readonly count: Int32Array;
  /** physical slot of each rank's values: a permutation of 0..k-1 per neuron */
  private readonly slot: Int32Array;
  /** token values per physical slot, NaN past the window's length */
  private readonly slotValues: Float32Array;

  constructor(
    readonly width: number,
    readonly k: number,
    readonly windowLength: number,
  ) {
    this.max = new Float32Array(width * k).fill(Number.NaN);
    this.window = new Int32Array(width * k).fill(-1);
    this.length = new Int32Array(width * k);
    this.slot = Int32Array.from({ length: width * k }, (_, i) => i % k);
    this.slotValues = new Float32Array(width * k * windowLength).fill(Number.NaN);
    this.count = new Int32Array(width);
  }

  /** Token values in rank order, [neuron, rank, token] (a copy). */
  values(): Float32Array {
    const { k, windowLength: L } = this;
    const out = new Float32Array(this.slotValues.length);
    for (let rank = 0; rank < this.slot.length; rank++) {
      const physical = rank - (rank % k) + this.slot[rank];
      out.set(this.slotValues.subarray(physical * L, (physical + 1) * L), rank * L);
    }
    return out;
  }

  /** Restores from a checkpoint: the ranked arrays, then values in rank order. */
  restore(arrays: { max: Float32Array; window: Int32Array; length: Int32Array; values: Float32Array }): void {
    this.max.set(arrays.max);
    this.window.set(arrays.window);
    this.length.set(arrays.length);
    this.slotValues.set(arrays.values);
    for (let i = 0; i < this.slot.length; i++) this.slot[i] = i % this.k;
    for (let j = 0; j < this.width; j++) {
      let c = 0;
      while (c < this.k && this.window[j * this.k + c] >= 0) c++;
      this.count[j] = c;
    }
  }

  /**
   * Folds another list set of the same shape into this one: each neuron keeps the k best of both. The
   * order (descending max, ties by window index) is a total order over distinct windows, so the result
   * does not depend on which set was filled first.
   */
  mergeFrom(other: TopWindows): void {
    const { k, windowLength: L } = this;
    if (other.width !== this.width || other.k !== k || other.windowLength !== L) {
      throw new Error('cannot merge top windows of different shapes');
    }
    for (let j = 0; j < this.width; j++) {
      for (let rank = 0; rank < other.count[j]; rank++) {
        const at = j * k + rank;
        const [max, window] = [other.max[at], other.window[at]];
        const last = j * k + k - 1;
        const full = this.count[j] === k;
        const ranksAbove = max > this.max[last] || (max === this.max[last] && window < this.window[last]);
        if (full && !ranksAbove) break; // the rest of other's list ranks lower still
        const physical = j * k + other.slot[at];
        const values = other.slotValues.subarray(physical * L, physical * L + other.length[at]);
        this.insert(j, max, window, other.length[at], (target, to) => target.set(values, to));
      }
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
    // the rank that falls off (or the first empty one) gives its physical slot to the new window
    const last = Math.min(this.count[j], k - 1);
    const freed = this.slot[base + last];
    if (last > p) {
      this.max.copyWithin(base + p + 1, base + p, base + last);
      this.window.copyWithin(base + p + 1, base + p, base + last);
      this.length.copyWithin(base + p + 1, base + p, base + last);
      this.slot.copyWithin(base + p + 1, base + p, base + last);
    }
    this.max[base + p] = max;
    this.window[base + p] = window;
    this.length[base + p] = length;
    this.slot[base + p] = freed;
    const at = (base + freed) * L;
    this.slotValues.fill(Number.NaN, at, at + L);
    copy(this.slotValues, at);
    if (this.count[j] < k) this.count[j]++;
  }
}
