import { Rng } from '@loupe/common';
import { withTestDatabase } from '@loupe/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAPTURE_MIGRATIONS_DIR, CAPTURE_SCHEMA } from '../capture/migrations.js';
import {
  addDocuments,
  type CollectionSpec,
  collectionEmbeddings,
  getCollection,
  listCollections,
  openCollection,
  searchCollection,
} from './store.js';

// The document store on the embedded Postgres (PGlite + pgvector over the wire protocol).
const db = withTestDatabase(
  { beforeAll, afterAll },
  { schema: CAPTURE_SCHEMA, migrations: CAPTURE_MIGRATIONS_DIR },
);

const spec = (name: string, dim: number, hook = 'blocks.1.hook_resid_post'): CollectionSpec => ({
  name,
  model: 'tiny',
  modelSha256: 'abc',
  hook,
  pooling: 'mean',
  dim,
});

function documents(rng: Rng, n: number, dim: number, prefix = 'd') {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    text: `document ${i}`,
    metadataJson: JSON.stringify({ i }),
    embedding: rng.normalFloat32(dim, 0, 1),
  }));
}

/** float64 cosine similarity: the reference the database's ranking is checked against. */
function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

describe('document store', () => {
  it('HNSW search returns the brute-force cosine ranking over the stored embeddings', async () => {
    const rng = new Rng(5);
    const a = await openCollection(db.sql, spec('alpha', 64));
    await addDocuments(db.sql, a, documents(rng, 300, 64));
    // a collection of another width in the same table must neither disturb nor appear
    const b = await openCollection(db.sql, spec('beta', 32));
    await addDocuments(db.sql, b, documents(rng, 50, 32, 'b'));
    const stored = await collectionEmbeddings(db.sql, 'alpha');
    expect(stored.size).toBe(300);
    for (let q = 0; q < 5; q++) {
      const query = rng.normalFloat32(64, 0, 1);
      const hits = await searchCollection(db.sql, a, query, { k: 10, embeddings: true });
      const reference = [...stored]
        .map(([id, e]) => ({ id, score: cosine(query, e) }))
        .sort((x, y) => y.score - x.score)
        .slice(0, 10);
      expect(hits.map((h) => h.id)).toEqual(reference.map((r) => r.id));
      for (const [i, hit] of hits.entries()) {
        // pgvector computes in float64 over the float32 values: agreement to rounding
        expect(Math.abs(hit.score - reference[i].score)).toBeLessThan(1e-6);
        expect(hit.embedding).toEqual(stored.get(hit.id));
        expect(JSON.parse(hit.metadataJson).i).toBe(Number(hit.id.slice(1)));
      }
      const exact = await searchCollection(db.sql, a, query, { k: 10, exact: true });
      expect(exact.map((h) => h.id)).toEqual(reference.map((r) => r.id));
    }
  });

  it('answers through the collection index', async () => {
    const a = await getCollection(db.sql, 'alpha');
    const plan = await db.sql.begin(async (tx) => {
      for (const s of ['enable_seqscan', 'enable_bitmapscan', 'enable_sort'])
        await tx.unsafe(`SET LOCAL ${s} = off`);
      const q = `[${new Array(64).fill(0.5).join(',')}]`;
      return tx.unsafe(
        `EXPLAIN SELECT id FROM documents WHERE collection = 'alpha'
         ORDER BY embedding::vector(64) <=> '${q}'::vector(64) LIMIT 10`,
      );
    });
    expect(plan.map((r) => Object.values(r)[0]).join('\n')).toMatch(/Index Scan using documents_hnsw_/);
    expect(a.count).toBe(300);
  });

  it('replaces documents by id, refuses an incompatible reopen, replaces a collection on request', async () => {
    const rng = new Rng(9);
    const a = await openCollection(db.sql, spec('alpha', 64));
    await addDocuments(db.sql, a, [
      { id: 'd0', text: 'new', metadataJson: '{}', embedding: rng.normalFloat32(64, 0, 1) },
    ]);
    expect((await getCollection(db.sql, 'alpha')).count).toBe(300);
    await expect(openCollection(db.sql, spec('alpha', 64, 'blocks.0.hook_resid_post'))).rejects.toThrow(
      /collection "alpha" holds hook blocks.1.hook_resid_post, not blocks.0.hook_resid_post/,
    );
    const replaced = await openCollection(db.sql, spec('alpha', 64, 'blocks.0.hook_resid_post'), {
      replace: true,
    });
    expect(replaced).toMatchObject({ hook: 'blocks.0.hook_resid_post', count: 0 });
    expect((await listCollections(db.sql)).map((c) => c.name)).toEqual(['alpha', 'beta']);
  });

  it('names what is wrong with a bad name, k or query', async () => {
    await expect(openCollection(db.sql, spec('Bad Name', 8))).rejects.toThrow(/lowercase letters, digits/);
    await expect(getCollection(db.sql, 'missing')).rejects.toThrow(
      /no collection "missing"; collections: alpha, beta/,
    );
    const b = await getCollection(db.sql, 'beta');
    await expect(searchCollection(db.sql, b, new Float32Array(32), { k: 0 })).rejects.toThrow(
      /k must be 1-100/,
    );
    await expect(searchCollection(db.sql, b, new Float32Array(8), { k: 5 })).rejects.toThrow(
      /has 8 values.*holds 32/,
    );
  });
});
