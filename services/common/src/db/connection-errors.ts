/**
 * Errors that say the database could not be reached or went away (not that a query was wrong): a
 * refused or reset connection, postgres.js' own connection codes, and the server's class 08
 * (connection exception) and 57P01-57P03 (shutting down, cannot connect now). A request that meets
 * one is UNAVAILABLE, to be retried, never an internal error; postgres.js reconnects by itself.
 */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);
const CLIENT = new Set(['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT']);
const SERVER = new Set(['57P01', '57P02', '57P03']);

export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return NETWORK.has(code) || CLIENT.has(code) || SERVER.has(code) || /^08[0-9A-Z]{3}$/.test(code);
}

/**
 * Runs `work`, and while it fails because the database is unreachable (a restart, a failover), runs it
 * again after a growing pause, for up to `forMs` in all; any other error, or the last unavailable one,
 * is thrown. For background work (job workers), where waiting out a restart beats failing the job;
 * `work` must be safe to repeat (the statements job workers send are guarded by their claims).
 */
export async function retryWhileUnavailable<T>(
  work: () => Promise<T>,
  options: { forMs?: number; signal?: AbortSignal } = {},
): Promise<T> {
  const deadline = Date.now() + (options.forMs ?? 120_000);
  for (let pause = 100; ; pause = Math.min(pause * 2, 5_000)) {
    try {
      return await work();
    } catch (error) {
      if (!isDatabaseUnavailable(error) || Date.now() + pause > deadline || options.signal?.aborted)
        throw error;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}
