import { setTimeout as sleep } from 'node:timers/promises';
import { ConcurrencyLimiter } from './limiter.js';

/** Transport settings shared by the chat and embeddings clients. */
export interface HttpClientOptions {
  apiKey?: string;
  concurrency: number;
  timeoutMs: number;
  /** Attempts after the first, on 429, 5xx, timeouts and connection errors. */
  maxRetries?: number;
  /** First backoff delay; doubles each retry, with full jitter, capped at maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Seeded jitter source for tests; Math.random otherwise (jitter needs no reproducibility). */
  random?: () => number;
}

const DEFAULT_RETRIES = 5;
const DEFAULT_BACKOFF_MS = 500;
const DEFAULT_MAX_BACKOFF_MS = 30_000;
// A Retry-After longer than this is the server telling us to stop, not to wait.
const MAX_RETRY_AFTER_MS = 120_000;

/** Why one attempt failed, and whether another attempt could help. */
interface AttemptFailure {
  retryable: boolean;
  message: string;
  status?: number;
  retryAfterMs?: number;
}

export class HttpRequestError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/**
 * POSTs JSON to one endpoint of an OpenAI-compatible server: retries 429 (honouring Retry-After), 5xx,
 * timeouts and dropped connections with exponential backoff and full jitter; bounds requests in flight
 * (the slot is held only while a request is in flight, not while backing off).
 */
export class RetryingJsonPost {
  private readonly limiter: ConcurrencyLimiter;

  constructor(
    readonly url: string,
    private readonly options: HttpClientOptions,
  ) {
    this.limiter = new ConcurrencyLimiter(Math.max(1, options.concurrency));
  }

  async post(body: unknown): Promise<{ reply: unknown; attempts: number }> {
    const maxRetries = this.options.maxRetries ?? DEFAULT_RETRIES;
    const text = JSON.stringify(body);
    let last: AttemptFailure | undefined;
    for (let attempt = 1; attempt <= maxRetries + 1; attempt++) {
      const outcome = await this.limiter.run(() => this.attempt(text));
      if ('reply' in outcome) return { reply: outcome.reply, attempts: attempt };
      last = outcome.failure;
      if (!last.retryable || attempt > maxRetries) break;
      await sleep(this.delayMs(attempt, last.retryAfterMs));
    }
    const tries = last?.retryable ? ` after ${maxRetries + 1} attempts` : '';
    throw new HttpRequestError(`failed${tries}: ${last?.message}`, last?.status);
  }

  private async attempt(body: string): Promise<{ reply: unknown } | { failure: AttemptFailure }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.timeoutMs);
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
      const response = await fetch(this.url, { method: 'POST', headers, body, signal: controller.signal });
      const text = await response.text();
      if (response.status === 429 || response.status >= 500) {
        return {
          failure: {
            retryable: true,
            status: response.status,
            message: `HTTP ${response.status} ${snippet(text)}`,
            retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
          },
        };
      }
      if (!response.ok)
        return {
          failure: {
            retryable: false,
            status: response.status,
            message: `HTTP ${response.status} ${snippet(text)}`,
          },
        };
      try {
        return { reply: JSON.parse(text) };
      } catch {
        return { failure: { retryable: false, message: `reply is not JSON: ${snippet(text)}` } };
      }
    } catch (error) {
      if (controller.signal.aborted)
        return { failure: { retryable: true, message: `no reply within ${this.options.timeoutMs} ms` } };
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      return { failure: { retryable: true, message: `connection failed (${cause})` } };
    } finally {
      clearTimeout(timer);
    }
  }

  private delayMs(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, MAX_RETRY_AFTER_MS);
    const cap = Math.min(
      this.options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS,
      (this.options.backoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** (attempt - 1),
    );
    // Full jitter (AWS architecture blog): clients that failed together do not retry together.
    return Math.round(cap * (this.options.random ?? Math.random)());
  }
}

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function snippet(text: string): string {
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
