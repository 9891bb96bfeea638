import type { NextFunction, Request, Response } from 'express';

/**
 * At most `max` GraphQL requests in the works at once (LOUPE_GATEWAY_MAX_IN_FLIGHT). Past that the
 * gateway is not keeping up: a request queued behind hundreds of others would only time out later,
 * so it is answered at once with 503 and UNAVAILABLE (Retry-After: 1), and the ones in the works keep
 * their latency. A request counts from its arrival until its answer is sent or its client goes away.
 */
export function limitInFlight(max: number) {
  let inFlight = 0;
  return (req: Request, res: Response, next: NextFunction): void => {
    if (max === 0 || req.method === 'OPTIONS') {
      next();
      return;
    }
    if (inFlight >= max) {
      res
        .status(503)
        .setHeader('Retry-After', '1')
        .json({
          errors: [
            {
              message: `the gateway is overloaded: ${max} requests are already in the works (LOUPE_GATEWAY_MAX_IN_FLIGHT); retry in a second`,
              extensions: { code: 'UNAVAILABLE', retryAfterSeconds: 1 },
            },
          ],
        });
      return;
    }
    inFlight++;
    res.once('close', () => inFlight--);
    next();
  };
}
