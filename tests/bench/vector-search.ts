import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '@loupe/common';
import { connect, runMigrations, spawnEmbeddedPostgres } from '@loupe/common/db';
import { nearestFeatures, SAE_MIGRATIONS_DIR, SAE_SCHEMA, saveFeatures } from '@loupe/sae';
import { median } from './matmul-rate.js';
import { fmt, printTable } from './measure.js';

const D = 768;
const FEATURES = 8192;
const QUERIES = 50;

/**
 * Nearest-feature search on the embedded Postgres: HNSW (cosine) against the exact scan, latency and
 * recall@10, over unit decoder directions at GPT-2-small width (random: the hardest case for HNSW).
 */
export async function vectorSearchBench(): Promise<void> {
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-bench-search-'));
  const db = await spawnEmbeddedPostgres({ dataDir: path.join(scratch, 'pg') });
  const sql = connect(db.url, { schema: SAE_SCHEMA });
  try {
    await runMigrations(sql, { schema: SAE_SCHEMA, dir: SAE_MIGRATIONS_DIR });
    const rng = new Rng(21);
    const decoder = rng.normalFloat32(FEATURES * D, 0, 1);
    for (let r = 0; r < FEATURES; r++) {
      const row = decoder.subarray(r * D, (r + 1) * D);
      const norm = Math.hypot(...row);
      for (let i = 0; i < D; i++) row[i] /= norm;
    }
    const start = process.hrtime.bigint();
    await saveFeatures(
      sql,
      {
        id: 'bench',
        model: 'bench',
        hook: 'blocks.6.hook_resid_pre',
        architecture: 'topk',
        dIn: D,
        dSae: FEATURES,
        cfg: {},
        weightsPath: '-',
      },
      decoder,
    );
    const storeSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    const queries = Array.from({ length: QUERIES }, (_, q) =>
      Float32Array.from(decoder.subarray(q * 97 * D, (q * 97 + 1) * D), (v) => v + rng.nextNormal() * 0.05),
    );
    const timed = async (options: { exact?: boolean; efSearch?: number }) => {
      const times: number[] = [];
      const results: number[][] = [];
      for (const query of queries) {
        const t0 = process.hrtime.bigint();
        results.push(
          (await nearestFeatures(sql, query, { k: 10, saeId: 'bench', ...options })).map((n) => n.index),
        );
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return { ms: median(times), results };
    };
    const exact = await timed({ exact: true });
    const recall = (results: number[][]) =>
      results.reduce((hits, found, q) => hits + found.filter((i) => exact.results[q].includes(i)).length, 0) /
      (QUERIES * 10);
    const rows = [
      {
        measure: `store ${fmt(FEATURES)} features (insert + HNSW build)`,
        value: `${fmt(storeSeconds, 1)} s`,
        reference: '-',
        ratio: '-',
      },
    ];
    rows.push({
      measure: 'exact scan, nearest 10',
      value: `${fmt(exact.ms, 1)} ms (median)`,
      reference: '-',
      ratio: 'recall 1.00',
    });
    for (const efSearch of [40, 200, 1000]) {
      const approx = await timed({ efSearch });
      rows.push({
        measure: `HNSW, nearest 10, ef_search ${efSearch}`,
        value: `${fmt(approx.ms, 1)} ms (median)`,
        reference: 'exact scan',
        ratio: `recall@10 ${fmt(recall(approx.results), 2)}`,
      });
    }
    printTable(
      `Nearest-feature search, embedded Postgres (PGlite + pgvector), ${fmt(FEATURES)} × ${D}-d`,
      rows,
    );
  } finally {
    await sql.end();
    await db.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  }
}
