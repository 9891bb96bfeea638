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

  /** Longest-first keeps padding low; a request too big for the budget still runs, alone. */
  private takeBatch(): Pending[] {
    const mode = this.queue[0]?.request.logits;
    const candidates = this.queue.filter((p) => p.request.logits === mode);
    candidates.sort((a, b) => b.request.ids.length - a.request.ids.length);
    const batch: Pending[] = [];
    for (const pending of candidates) {
      const longest = batch[0]?.request.ids.length ?? pending.request.ids.length;
      if (batch.length > 0 && longest * (batch.length + 1) > this.options.maxBatchTokens) break;
      batch.push(pending);
    }
    const taken = new Set(batch);
    this.queue = this.queue.filter((p) => !taken.has(p));
    return batch;
  }
}
