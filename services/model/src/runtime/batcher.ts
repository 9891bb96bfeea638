import type { ForwardRequest, ForwardResult } from './gpt2-runner.js';

export interface BatcherOptions {
  /** batch × padded length may not exceed this many tokens in one forward pass */
  maxBatchTokens: number;
  /** how long the first request of a batch waits for company */
  windowMs: number;
}

interface Pending {
  request: ForwardRequest;
  resolve(result: ForwardResult): void;
  reject(error: unknown): void;
}

type ForwardFn = (requests: ForwardRequest[]) => Promise<ForwardResult[]>;

/**
 * Dynamic batching for concurrent requests: requests arriving within a short window share one forward
 * pass, up to a token budget; passes run one at a time because each already uses every core.
 * Requests are validated before they queue, so one bad request never fails the batch it would join.
 */
export class DynamicBatcher {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    private readonly forward: ForwardFn,
    private readonly validate: (request: ForwardRequest) => void,
    private readonly options: BatcherOptions,
  ) {}

  submit(request: ForwardRequest): Promise<ForwardResult> {
    this.validate(request);
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.running || this.timer || this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.runNext();
    }, this.options.windowMs);
  }

  private async runNext(): Promise<void> {
    const batch = this.takeBatch();
    if (batch.length === 0) return;
    this.running = true;
    try {
      const results = await this.forward(batch.map((p) => p.request));
      for (const [i, pending] of batch.entries()) pending.resolve(results[i]);
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  /**
   * The oldest request always goes (so none waits behind a stream of others), joined by the longest
   * compatible ones that fit the token budget, which keeps padding low. A request bigger than the
   * budget still runs, alone.
   */
  private takeBatch(): Pending[] {
    const [oldest, ...rest] = this.queue;
    if (!oldest) return [];
    const batch = [oldest];
    let longest = oldest.request.ids.length;
    const others = rest
      .filter((p) => p.request.logits === oldest.request.logits)
      .sort((a, b) => b.request.ids.length - a.request.ids.length);
    for (const pending of others) {
      const length = Math.max(longest, pending.request.ids.length);
      if (length * (batch.length + 1) > this.options.maxBatchTokens) continue;
      batch.push(pending);
      longest = length;
    }
    const taken = new Set(batch);
    this.queue = this.queue.filter((p) => !taken.has(p));
    return batch;
  }
}
