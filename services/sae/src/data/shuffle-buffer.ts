import type { Rng } from '@loupe/common';

/**
 * A fixed-size pool of vectors from which a random one leaves each time a new one enters: the classic
 * streaming shuffle. Vectors that enter late can still leave early, so with a pool a few shards deep
 * each batch mixes vectors from many shards while memory stays at `capacity` vectors.
 */
export class ShuffleBuffer {
  private readonly data: Float32Array;
  private count = 0;

  constructor(
    readonly width: number,
    readonly capacity: number,
    private readonly rng: Rng,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`shuffle buffer capacity ${capacity}`);
    this.data = new Float32Array(width * capacity);
  }

  get size(): number {
    return this.count;
  }

  get full(): boolean {
    return this.count === this.capacity;
  }

  /** Adds a vector while there is room. */
  push(src: Float32Array, srcOffset: number): void {
    if (this.full) throw new Error('shuffle buffer is full');
    this.data.set(src.subarray(srcOffset, srcOffset + this.width), this.count * this.width);
    this.count++;
  }

  /** Moves a random vector out to `dst` and puts the incoming one in its place. */
  exchange(dst: Float32Array, dstOffset: number, src: Float32Array, srcOffset: number): void {
    const at = this.pick() * this.width;
    dst.set(this.data.subarray(at, at + this.width), dstOffset);
    this.data.set(src.subarray(srcOffset, srcOffset + this.width), at);
  }

  /** Moves a random vector out to `dst`; the last vector fills the hole. */
  take(dst: Float32Array, dstOffset: number): void {
    if (this.count === 0) throw new Error('shuffle buffer is empty');
    const at = this.pick() * this.width;
    dst.set(this.data.subarray(at, at + this.width), dstOffset);
    this.count--;
    const last = this.count * this.width;
    if (at !== last) this.data.copyWithin(at, last, last + this.width);
  }

  private pick(): number {
    return Math.floor(this.rng.nextUniform() * this.count);
  }
}
