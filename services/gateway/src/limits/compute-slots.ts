import { currentRequest, LoupeError } from '@loupe/common';

/**
 * Per-client concurrency of expensive operations (forward passes: generation, activations, encoding,
 * product search): each client runs at most `perClient` at once; up to `maxWaiting` more wait their
 * turn (until their request is cancelled or runs out of time); beyond that a call is refused with
 * RATE_LIMITED at once. One client's flood then queues behind itself, not in front of everyone else.
 */
export class ComputeSlots {
  private readonly clients = new Map<string, { running: number; waiting: (() => void)[] }>();

  constructor(
    readonly perClient: number,
    readonly maxWaiting = 4 * perClient,
  ) {}

  async run<T>(client: string, signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
    const state = this.clients.get(client) ?? { running: 0, waiting: [] };
    this.clients.set(client, state);
    if (state.running >= this.perClient) {
      if (state.waiting.length >= this.maxWaiting) {
        throw new LoupeError(
          `too many expensive requests at once from this client: at most ${this.perClient} run and ${this.maxWaiting} wait (LOUPE_GATEWAY_COMPUTE_SLOTS); retry when some have finished`,
          'RATE_LIMITED',
        );
      }
      await new Promise<void>((resolve, reject) => {
        const turn = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          state.waiting.splice(state.waiting.indexOf(turn), 1);
          reject(signal?.reason);
        };
        state.waiting.push(turn);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    } else {
      state.running++;
    }
    try {
      signal?.throwIfAborted();
      return await work();
    } finally {
      // the slot passes straight to the next in line, or is freed
      const next = state.waiting.shift();
      if (next) next();
      else if (--state.running === 0) this.clients.delete(client);
    }
  }

  /** Calls in flight and waiting for `client` (for tests and metrics). */
  load(client: string): { running: number; waiting: number } {
    const state = this.clients.get(client);
    return { running: state?.running ?? 0, waiting: state?.waiting.length ?? 0 };
  }
}

/**
 * The same gRPC client with `methods` run under the current request's client's slots. Calls made
 * outside a request (startup checks) are not limited.
 */
export function limitCompute<T extends object>(
  api: T,
  methods: readonly (keyof T & string)[],
  slots: ComputeSlots,
): T {
  const limited = { ...api } as Record<string, unknown>;
  for (const method of methods) {
    const call = (api as Record<string, (...args: unknown[]) => Promise<unknown>>)[method];
    limited[method] = (...args: unknown[]) => {
      const request = currentRequest();
      if (!request?.client) return call(...args);
      return slots.run(request.client, request.signal, () => call(...args));
    };
  }
  return limited as T;
}
