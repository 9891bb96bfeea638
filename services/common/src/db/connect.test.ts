import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, fromVector, registerVectorType, type Sql, toVector } from './connect.js';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './embedded.js';

let dataDir: string;
let db: EmbeddedPostgres;
let sql: Sql;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'loupe-connect-'));
  db = await startEmbeddedPostgres({ dataDir });
  sql = connect(db.url, { max: 2 });
});

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await db?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** Deterministic unit vectors, so recall does not depend on luck. */
function unitVectors(count: number, dims: number, seed: number): Float32Array[] {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  return Array.from({ length: count }, () => {
    const v = Float32Array.from({ length: dims }, next);
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
}

const cosine = (a: Float32Array, b: Float32Array) => 1 - a.reduce((s, x, i) => s + x * b[i], 0);

describe('vector text form', () => {
  it('round-trips numbers and rejects non-finite ones', () => {
    const v = [0.5, -1, 3e-8, 1234.25];
    expect(toVector(v)).toBe('[0.5,-1,3e-8,1234.25]');
    expect(fromVector(toVector(Float32Array.from(v)))).toEqual(Array.from(Float32Array.from(v)));
    expect(() => toVector([1, Number.NaN])).toThrow(/element 1 is NaN/);
  });
});

describe('connect', () => {
  it('passes vectors as text and reads them back, or as number[] once registered', async () => {
    await sql`CREATE TABLE small (id int PRIMARY KEY, embedding vector(3))`;
    await sql`INSERT INTO small VALUES (1, ${toVector([1, 2, 3])})`;
    const [asText] = await sql<{ embedding: string }[]>`SELECT embedding FROM small`;
    expect(fromVector(asText.embedding)).toEqual([1, 2, 3]);

    const typed = connect(db.url, { max: 1 });
    try {
      expect(await registerVectorType(typed)).toBe(true);
      await typed`INSERT INTO small VALUES (2, ${Float32Array.from([4, 5, 6])}::vector)`;
      const rows = await typed<
        { id: number; embedding: number[] }[]
      >`SELECT id, embedding FROM small ORDER BY id`;
      expect(rows).toEqual([
        { id: 1, embedding: [1, 2, 3] },
        { id: 2, embedding: [4, 5, 6] },
      ]);
    } finally {
      await typed.end({ timeout: 1 });
    }
  });

  it('sets search_path to the schema, then public', async () => {
    await sql`CREATE SCHEMA IF NOT EXISTS "svc-a"`;
    const scoped = connect(db.url, { schema: 'svc-a', max: 1, applicationName: 'test' });
    try {
      expect(await scoped`SHOW search_path`).toEqual([{ search_path: '"svc-a", public' }]);
      await scoped`CREATE TABLE here (x int)`;
      expect(await sql`SELECT to_regclass('"svc-a".here') IS NOT NULL AS ok`).toEqual([{ ok: true }]);
    } finally {
      await scoped.end({ timeout: 1 });
    }
  });

  it('builds an HNSW cosine index on vector(64) and answers nearest-10 through it', async () => {
    const vectors = unitVectors(2000, 64, 7);
    await sql`CREATE TABLE items (id int PRIMARY KEY, embedding vector(64) NOT NULL)`;
    for (let start = 0; start < vectors.length; start += 500) {
      const rows = vectors
        .slice(start, start + 500)
        .map((v, i) => ({ id: start + i, embedding: toVector(v) }));
      await sql`INSERT INTO items ${sql(rows, 'id', 'embedding')}`;
    }
    await sql`CREATE INDEX items_embedding ON items USING hnsw (embedding vector_cosine_ops)`;
    await sql`ANALYZE items`;

    const queries = unitVectors(20, 64, 99);
    let hits = 0;
    for (const q of queries) {
      const exact = vectors
        .map((v, id) => ({ id, d: cosine(q, v) }))
        .sort((x, y) => x.d - y.d)
        .slice(0, 10)
        .map((r) => r.id);
      const found = await sql.begin(async (tx) => {
        // Default ef_search (40) gives poor recall on uniform random vectors.
        await tx`SET LOCAL hnsw.ef_search = 100`;
        // At 2,000 rows the planner rightly prefers an exact scan; make it show the index works.
        await tx`SET LOCAL enable_seqscan = off`;
        const plan = await tx.unsafe(`EXPLAIN SELECT id FROM items ORDER BY embedding <=> $1 LIMIT 10`, [
          toVector(q),
        ]);
        expect(JSON.stringify(plan)).toContain('items_embedding');
        return tx<{ id: number }[]>`SELECT id FROM items ORDER BY embedding <=> ${toVector(q)} LIMIT 10`;
      });
      expect(found).toHaveLength(10);
      hits += found.filter((r) => exact.includes(r.id)).length;
    }
    expect(hits / (queries.length * 10)).toBeGreaterThan(0.9);
  });
});
