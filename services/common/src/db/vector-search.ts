import type postgres from 'postgres';
import { type Sql, toVector } from './connect.js';

/**
 * HNSW's default candidate list (ef_search 40) finds under half of the true 10 nearest among random
 * 768-d unit directions (the hardest case); measured on 8,192 of them (`npm run bench search`): recall@10
 * 0.44 at 40, 0.82 at 200, 1.00 at 1,000 (pgvector's maximum) in 21 ms against 77 ms for the exact scan.
 */
export const DEFAULT_EF_SEARCH = 1000;

export interface NearestSearch {
  /** the table searched */
  table: string;
  /** the vector column; read as `column::vector(d)`, d the query's length, as the HNSW indexes are */
  column: string;
  /**
   * SQL predicate spelled exactly as a partial index's (literals, already checked by the caller), so
   * the planner can use that index
   */
  where: string;
  /** the other columns to return, as SQL (each row also has `similarity`) */
  columns: string;
  query: ArrayLike<number>;
  k: number;
  /** HNSW candidate list for this query; DEFAULT_EF_SEARCH, and never below k */
  efSearch?: number;
  /** scan every row instead of the index (the reference the index is tested on) */
  exact?: boolean;
}

/**
 * The k rows whose vectors are nearest (cosine) to `query`, nearest first, each with `similarity`
 * (1 − cosine distance). By default through an HNSW index with ef_search set for this query only;
 * `exact` never takes an index.
 */
export async function nearestByCosine(sql: Sql, search: NearestSearch): Promise<postgres.Row[]> {
  const d = search.query.length;
  const efSearch = Math.max(search.efSearch ?? DEFAULT_EF_SEARCH, search.k);
  const vector = toVector(search.query);
  const distance = `${search.column}::vector(${d}) <=> $1::vector(${d})`;
  return sql.begin(async (tx) => {
    // SET LOCAL: only this transaction's search, never other clients sharing the connection. Approximate
    // searches always take the index (for a small table the planner would pick a scan and a sort, hiding
    // how the index behaves once the table is large); exact ones never do.
    if (search.exact) {
      await tx.unsafe('SET LOCAL enable_indexscan = off');
    } else {
      // without a sort or another scan to fall back on, only the HNSW index can produce the order
      for (const setting of ['enable_seqscan', 'enable_bitmapscan', 'enable_sort'])
        await tx.unsafe(`SET LOCAL ${setting} = off`);
      await tx.unsafe(`SET LOCAL hnsw.ef_search = ${Number(efSearch)}`);
    }
    return tx.unsafe(
      `SELECT ${search.columns}, 1 - (${distance}) AS similarity
       FROM ${search.table} WHERE ${search.where}
       ORDER BY ${distance} LIMIT $2`,
      [vector, search.k],
    );
  }) as Promise<postgres.Row[]>;
}
