import { buildSchema, parse, specifiedRules, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { costLimit, depthLimit, limitErrors } from './query-limits.js';

const schema = buildSchema(`
  type Query { item(id: ID): Item, items(ids: [ID!], first: Int): ItemConnection }
  type Item { name: String, child: Item, list(first: Int): ItemConnection }
  type ItemConnection { edges: [Edge] }
  type Edge { node: Item }
`);
const MODEL = { defaultPage: 20, maxPage: 100 };

function errors(query: string, rule: ReturnType<typeof depthLimit>): string[] {
  return validate(schema, parse(query), [...specifiedRules, rule]).map((e) => e.message);
}

describe('depth limit', () => {
  it('counts nested fields, through fragments, not introspection', () => {
    expect(errors('{ item { child { child { name } } } }', depthLimit(4))).toEqual([]);
    expect(errors('{ item { child { child { child { name } } } } }', depthLimit(4))).toEqual([
      'query is 5 levels deep; the limit is 4: split it into several queries',
    ]);
    const viaFragment =
      'query { item { ...F } } fragment F on Item { child { ... on Item { child { name } } } }';
    // item › child › child › name: 4 levels
    expect(errors(viaFragment, depthLimit(4))).toEqual([]);
    expect(errors(viaFragment, depthLimit(3))).toHaveLength(1);
    expect(
      errors('{ __schema { types { fields { type { ofType { ofType { name } } } } } } }', depthLimit(2)),
    ).toEqual([]);
  });
});

describe('cost limit', () => {
  it('multiplies children by first, by the ids given, or by the largest page for a variable', () => {
    // items(first: 10): 1 + 10 × (edges 1 + node 1 + name 1) = 31
    expect(errors('{ items(first: 10) { edges { node { name } } } }', costLimit(31, MODEL))).toEqual([]);
    expect(errors('{ items(first: 10) { edges { node { name } } } }', costLimit(30, MODEL))).toEqual([
      'query costs 31 (fields × page sizes); the limit is 30: ask for smaller pages (first) or fewer fields',
    ]);
    // no first: the default page (20) → 1 + 20 × 3 = 61; a variable: the largest page (100) → 301
    expect(errors('{ items { edges { node { name } } } }', costLimit(60, MODEL))[0]).toMatch(/costs 61/);
    expect(
      errors('query ($n: Int) { items(first: $n) { edges { node { name } } } }', costLimit(300, MODEL))[0],
    ).toMatch(/costs 301/);
    // two ids, a nested page of 5: list = 1 + 5 × 3 = 16, edges › node = 2 + 16 = 18, items = 1 + 2 × 18 = 37
    expect(
      errors(
        '{ items(ids: ["a", "b"]) { edges { node { list(first: 5) { edges { node { name } } } } } } }',
        costLimit(1, MODEL),
      )[0],
    ).toMatch(/costs 37/);
  });
});

describe('limits outside validation (subscriptions)', () => {
  it('reports the same errors as the validation rules', () => {
    const query = '{ items(first: 10) { edges { node { child { child { name } } } } } }';
    const limits = { ...MODEL, maxDepth: 4, maxCost: 40 };
    const direct = limitErrors(parse(query), limits).map((e) => [e.message, e.extensions.code]);
    expect(direct).toEqual([
      ['query is 6 levels deep; the limit is 4: split it into several queries', 'QUERY_TOO_DEEP'],
      [expect.stringMatching(/^query costs 51 /), 'QUERY_TOO_COSTLY'],
    ]);
    expect([...errors(query, depthLimit(4)), ...errors(query, costLimit(40, MODEL))]).toEqual(
      direct.map(([message]) => message),
    );
    expect(limitErrors(parse(query), { ...MODEL, maxDepth: 6, maxCost: 51 })).toEqual([]);
  });
});
