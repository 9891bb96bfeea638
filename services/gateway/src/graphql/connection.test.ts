import { UserInputError } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { connection, decodeCursor } from './connection.js';

const items = Array.from({ length: 45 }, (_, i) => i);

describe('connections', () => {
  it('pages through a list with cursors that round-trip, and says where it is', () => {
    const seen: number[] = [];
    let after: string | null = null;
    for (;;) {
      const page = connection(items, { first: 20, after });
      seen.push(...page.edges.map((e) => e.node));
      expect(page.totalCount).toBe(45);
      expect(page.pageInfo.hasPreviousPage).toBe(after !== null);
      expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor);
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual(items);
    expect(connection(items, {}).edges).toHaveLength(20);
    expect(connection([], {}).pageInfo).toEqual({
      hasNextPage: false,
      hasPreviousPage: false,
      startCursor: null,
      endCursor: null,
    });
  });

  it('refuses page sizes out of range and cursors it did not give out', () => {
    expect(() => connection(items, { first: 101 })).toThrow(
      new UserInputError('first must be 0-100, got 101'),
    );
    expect(() => connection(items, { first: -1 })).toThrow(/first must be 0-100/);
    expect(() => decodeCursor('bm9wZQ')).toThrow(/cursor "bm9wZQ" is not one this API gave out/);
  });
});
