/**
 * At most `limit` tasks run at once; the rest wait in arrival order. Hosted APIs rate-limit per key and
 * local servers (vLLM, llama.cpp) slow down past their batch size, so the client bounds what it sends.
 */
export class ConcurrencyLimiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency must be ≥ 1, got ${limit}`);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active += 1;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter, so `active` never dips and lets a newcomer jump in.
      if (next) next();
      else this.active -= 1;
    }
  }
}
