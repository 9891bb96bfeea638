import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/**
 * The request a piece of work belongs to, carried through async calls: the gateway starts one per HTTP
 * request, gRPC clients send its id as `x-request-id` metadata, and services continue it per call, so
 * one id ties together the log lines of every process a request went through.
 */
export interface RequestContext {
  requestId: string;
}

export const REQUEST_ID_HEADER = 'x-request-id';

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` (and everything it awaits or schedules) as part of request `requestId`. */
export function withRequestId<T>(requestId: string, fn: () => T): T {
  return storage.run({ requestId }, fn);
}

/** The id of the request the current code runs for, if any. */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
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
