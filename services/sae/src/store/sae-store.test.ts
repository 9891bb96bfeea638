import { Rng } from '@loupe/common';
import { withTestDatabase } from '@loupe/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAE_MIGRATIONS_DIR, SAE_SCHEMA } from './migrations.js';
import { nearestFeatures, saveFeatures } from './sae-store.js';

// The feature store on the embedded Postgres (PGlite + pgvector over the wire protocol).
const db = withTestDatabase({ beforeAll, afterAll }, { schema: SAE_SCHEMA, migrations: SAE_MIGRATIONS_DIR });

function unitRows(rng: Rng, rows: number, d: number): Float32Array {
  const out = rng.normalFloat32(rows * d, 0, 1);
  for (let r = 0; r < rows; r++) {
    const row = out.subarray(r * d, (r + 1) * d);
    const norm = Math.hypot(...row);
    for (let i = 0; i < d; i++) row[i] /= norm;
  }
  return out;
}

const sae = (id: string, dIn: number, dSae: number) => ({
  id,
  model: 'tiny',
  hook: 'blocks.1.hook_resid_pre',
  architecture: 'topk',
  dIn,
  dSae,
  cfg: { k: 8 },
  weightsPath: `/nowhere/${id}`,
});

describe('feature store', () => {
  it('finds nearest features through HNSW with recall@10 ≥ 0.95 against the exact scan', async () => {
    const rng = new Rng(3);
    const [d, m] = [64, 2000];
    const decoder = unitRows(rng, m, d);
    await saveFeatures(db.sql, sae('a', d, m), decoder);
    let hits = 0;
    const queries = 40;
    for (let q = 0; q < queries; q++) {
      const query = Float32Array.from(
        decoder.subarray(q * 7 * d, (q * 7 + 1) * d),
        (v) => v + rng.nextNormal() * 0.3,
      );
      const approx = await nearestFeatures(db.sql, query, { k: 10, saeId: 'a' });
      const exact = await nearestFeatures(db.sql, query, { k: 10, saeId: 'a', exact: true });
      expect(exact).toHaveLength(10);
      const truth = new Set(exact.map((n) => n.index));
      hits += approx.filter((n) => truth.has(n.index)).length;
      // the exact scan agrees with cosine similarity computed here
      const cos = (i: number) => {
        let dot = 0;
        let qq = 0;
        for (let j = 0; j < d; j++) {
          dot += decoder[i * d + j] * query[j];
          qq += query[j] * query[j];
        }
        return dot / Math.sqrt(qq);
      };
      expect(exact[0].similarity).toBeCloseTo(cos(exact[0].index), 4);
    }
    expect(hits / (queries * 10)).toBeGreaterThanOrEqual(0.95);
    // the statements nearestFeatures runs are answered by the HNSW indexes (per SAE, and per width)
    const explain = (filter: string) =>
      db.sql.begin(async (tx) => {
        for (const setting of ['enable_seqscan', 'enable_bitmapscan', 'enable_sort'])
          await tx.unsafe(`SET LOCAL ${setting} = off`);
        const rows = await tx.unsafe(
          `EXPLAIN SELECT index FROM features WHERE ${filter} ORDER BY decoder::vector(64) <=> $1::vector(64) LIMIT 10`,
          [`[${Array.from(decoder.subarray(0, d)).join(',')}]`],
        );
        return JSON.stringify(rows);
      });
    expect(await explain("sae_id = 'a' AND d_in = 64")).toMatch(
      /Index Scan using features_decoder_hnsw_sae_/,
    );
    expect(await explain('d_in = 64')).toMatch(/Index Scan using features_decoder_hnsw_64/);
  });

  it('keeps SAEs of different widths apart, and replaces an SAE stored twice', async () => {
    const rng = new Rng(4);
    const decoder = unitRows(rng, 50, 32);
    await saveFeatures(db.sql, sae('b', 32, 50), decoder);
    await saveFeatures(db.sql, sae('b', 32, 50), decoder);
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM features WHERE sae_id = 'b'`;
    expect(n).toBe(50);
    const found = await nearestFeatures(db.sql, decoder.subarray(5 * 32, 6 * 32), { k: 3 });
    expect(found[0]).toMatchObject({ saeId: 'b', index: 5 });
    expect(found[0].similarity).toBeCloseTo(1, 5);
    expect(found.every((f) => f.saeId === 'b')).toBe(true); // the 64-wide SAE is never compared
  });

  it('refuses malformed input with clear messages', async () => {
    await expect(saveFeatures(db.sql, sae('c', 32, 10), new Float32Array(31))).rejects.toThrow(/needs 320/);
    await expect(nearestFeatures(db.sql, new Float32Array(32), { k: 0 })).rejects.toThrow(/k must be 1-1000/);
    await expect(nearestFeatures(db.sql, Float32Array.of(1, Number.NaN), { k: 1 })).rejects.toThrow(/finite/);
  });
});
