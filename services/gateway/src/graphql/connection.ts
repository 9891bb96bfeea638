import { UserInputError } from '@loupe/common';
import { LIMITS } from '../limits/limits.js';

/**
 * Relay-style connections over a list the gateway already holds. Cursors are opaque to clients
 * (base64url of the item's offset); a cursor from anything else is refused with a clear message.
 */
export interface PageArgs {
  first?: number | null;
  after?: string | null;
}

export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: {
    hasNextPage: boolean;
    hasPreviousPage: boolean;
    startCursor: string | null;
    endCursor: string | null;
  };
  totalCount: number;
}

const CURSOR = /^o:(0|[1-9]\d{0,8})$/;

export function encodeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

export function decodeCursor(cursor: string): number {
  const match = CURSOR.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match)
    throw new UserInputError(`cursor "${cursor}" is not one this API gave out (use pageInfo.endCursor)`);
  return Number(match[1]);
}

/** The offset and size of the page the arguments ask for (checked). */
export function pageWindow(args: PageArgs): { start: number; first: number } {
  const first = args.first ?? LIMITS.defaultPage;
  if (!Number.isInteger(first) || first < 0 || first > LIMITS.maxPage)
    throw new UserInputError(`first must be 0-${LIMITS.maxPage}, got ${first}`);
  return { start: args.after ? decodeCursor(args.after) + 1 : 0, first };
}

/** A connection over one page of a list the service paged: items from offset start of total. */
export function pageConnection<T>(page: readonly T[], start: number, total: number): Connection<T> {
  const edges = page.map((node, i) => ({ cursor: encodeCursor(start + i), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: start + page.length < total,
      hasPreviousPage: start > 0,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    totalCount: total,
  };
}

export function connection<T>(items: readonly T[], args: PageArgs): Connection<T> {
  const { start, first } = pageWindow(args);
  return pageConnection(items.slice(start, start + first), start, items.length);
}
