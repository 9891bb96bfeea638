import { createHash } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

/**
 * Per-key rate limits: a token bucket per API key (per client address for keyless reads), refilled at
 * `ratePerSecond` and holding up to twice that, so short bursts pass and sustained floods do not.
 * Over the limit a request gets HTTP 429 with a GraphQL error whose code is RATE_LIMITED and a
 * Retry-After header; it never reaches a resolver or a service.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly capacity: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.capacity = Math.max(1, 2 * ratePerSecond);
  }

  /** Takes one token for `key`; returns 0 when it had one, else the seconds until it will. */
  take(key: string): number {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.capacity, at: now };
    bucket.tokens = Math.min(this.capacity, bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSecond);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    this.forgetFull(now);
    return (1 - bucket.tokens) / this.ratePerSecond;
  }

  /** Buckets that have refilled completely carry no state worth keeping (bounds memory under many keys). */
  private forgetFull(now: number): void {
    if (this.buckets.size < 10_000) return;
    for (const [key, bucket] of this.buckets)
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSecond >= this.capacity)
        this.buckets.delete(key);
  }
}

/** Who a request is counted against: its API key (hashed: the key itself is never kept) or its address. */
export function rateLimitKey(req: Request): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (match) return `key:${createHash('sha256').update(match[1], 'utf8').digest('hex')}`;
  return `addr:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;
}

/** Express middleware for /graphql; `ratePerSecond` 0 turns it off (LOUPE_GATEWAY_RATE_LIMIT). */
export function rateLimit(ratePerSecond: number) {
  const buckets = ratePerSecond > 0 ? new TokenBuckets(ratePerSecond) : undefined;
  return (req: Request, res: Response, next: NextFunction): void => {
    // CORS preflights carry no operation; they are answered before this when origins are configured
    const wait = req.method === 'OPTIONS' ? 0 : (buckets?.take(rateLimitKey(req)) ?? 0);
    if (wait === 0) {
      next();
      return;
    }
    const retryAfter = Math.max(1, Math.ceil(wait));
    res
      .status(429)
      .setHeader('Retry-After', String(retryAfter))
      .json({
        errors: [
          {
            message: `rate limit exceeded: at most ${ratePerSecond} requests per second per API key (LOUPE_GATEWAY_RATE_LIMIT); retry after ${retryAfter} s`,
            extensions: { code: 'RATE_LIMITED', retryAfterSeconds: retryAfter },
          },
        ],
      });
  };
}
