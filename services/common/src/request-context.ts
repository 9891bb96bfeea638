import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { LoupeError } from './errors.js';

/**
 * The request a piece of work belongs to, carried through async calls: the gateway starts one per HTTP
 * request, gRPC clients send its id as `x-request-id` metadata (and its deadline as the call's), and
 * services continue it per call, so one id ties together the log lines of every process a request went
 * through, and a caller that goes away stops the work everywhere it reached.
 */
export interface RequestContext {
  requestId: string;
  /** aborted when the caller went away or the deadline passed; the reason is a LoupeError */
  signal?: AbortSignal;
  /** epoch milliseconds after which the work is stopped */
  deadline?: number;
  /** who the request is counted against for per-client limits (a hashed API key or an address) */
  client?: string;
}

export const REQUEST_ID_HEADER = 'x-request-id';

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` (and everything it awaits or schedules) as part of request `requestId`. */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  return storage.run({ requestId }, fn);
}

/** Runs `fn` (and everything it awaits or schedules) as part of the request `context`. */
export function withRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

/**
 * Runs `fn` outside any request: background work that a request only started (a job queue's loop, a
 * worker's poll) must not inherit that request's deadline, abort signal or id, or it would stop when
 * the request that kicked it ends.
 */
export function outsideRequest<T>(fn: () => T): T {
  return storage.exit(fn);
}

/** The id of the request the current code runs for, if any. */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}

/** The request the current code runs for, if any. */
export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

/** Throws the abort reason when the current request was cancelled or ran out of time. */
export function throwIfCancelled(): void {
  storage.getStore()?.signal?.throwIfAborted();
}

/**
 * An AbortController for a request that ends at `deadline` (epoch ms) at the latest, aborting with a
 * LoupeError that says which. `release()` clears its timer once the work is done.
 */
export function requestAbort(deadline: number | undefined): {
  controller: AbortController;
  cancel: (why: string) => void;
  release: () => void;
} {
  const controller = new AbortController();
  const timer =
    deadline === undefined
      ? undefined
      : setTimeout(
          () =>
            controller.abort(
              new LoupeError('the request ran past its deadline and was stopped', 'DEADLINE_EXCEEDED'),
            ),
          Math.max(0, deadline - Date.now()),
        );
  timer?.unref();
  return {
    controller,
    cancel: (why) => {
      if (!controller.signal.aborted) controller.abort(new LoupeError(why, 'CANCELLED'));
    },
    release: () => clearTimeout(timer),
  };
}

const ACCEPTED_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The id a caller sent when it is a plausible one (letters, digits, `._:-`, up to 128 characters: it
 * ends up in every log line, so nothing else is trusted), else a fresh UUID.
 */
export function requestIdFrom(sent: unknown): string {
  const value = Array.isArray(sent) ? sent[0] : sent;
  if (typeof value === 'string' && ACCEPTED_ID.test(value)) return value;
  if (Buffer.isBuffer(value) && ACCEPTED_ID.test(value.toString('latin1'))) return value.toString('latin1');
  return randomUUID();
}
