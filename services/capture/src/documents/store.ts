import { createHash } from 'node:crypto';
import { UserInputError } from '@loupe/common';
import { fromVector, nearestByCosine, type Sql, toVector } from '@loupe/common/db';
import type { Pooling } from './pooling.js';

export interface Collection {
  name: string;
  model: string;
  modelSha256: string;
  hook: string;
  pooling: Pooling;
  dim: number;
  count: number;
  createdAt: Date;
  updatedAt: Date;
}

export type CollectionSpec = Omit<Collection, 'count' | 'createdAt' | 'updatedAt'>;

export interface StoredDocument {
  id: string;
  text: string;
  metadataJson: string;
  embedding: ArrayLike<number>;
}

export interface Hit {
  id: string;
  text: string;
  metadataJson: string;
  /** cosine similarity to the query */
  score: number;
  embedding?: number[];
}

export const MAX_K = 100;
const INSERT_BATCH = 500;
const COLLECTION_NAME = /^[a-z0-9_-]{1,64}$/;

export function checkCollectionName(name: string): string {
  if (!COLLECTION_NAME.test(name)) {
    throw new UserInputError(
      `collection name "${name}" may use lowercase letters, digits, "-" and "_" (1-64 characters)`,
    );
  }
  return name;
}

function indexName(name: string): string {
  return `documents_hnsw_${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
}

/**
 * Creates the collection, or checks that an existing one was embedded the same way (a vector from
 * another model, hook or pooling would not be comparable). With `replace`, drops it first.
 */
export async function openCollection(
  sql: Sql,
  spec: CollectionSpec,
  options: { replace?: boolean } = {},
): Promise<Collection> {
  checkCollectionName(spec.name);
  if (!Number.isInteger(spec.dim) || spec.dim < 1 || spec.dim > 2000)
    throw new UserInputError(`embedding width ${spec.dim} is not supported (1-2000, pgvector's HNSW limit)`);
  if (options.replace) await dropCollection(sql, spec.name);
  const existing = await findCollection(sql, spec.name);
  if (existing) {
    for (const key of ['model', 'modelSha256', 'hook', 'pooling', 'dim'] as const) {
      if (existing[key] !== spec[key]) {
        throw new UserInputError(
          `collection "${spec.name}" holds ${key} ${existing[key]}, not ${spec[key]}: index into a new collection or replace this one`,
        );
      }
    }
    return existing;
  }
  await sql`
    INSERT INTO document_collections (name, model, model_sha256, hook, pooling, dim)
    VALUES (${spec.name}, ${spec.model}, ${spec.modelSha256}, ${spec.hook}, ${spec.pooling}, ${spec.dim})
    ON CONFLICT (name) DO NOTHING`;
  return (await findCollection(sql, spec.name)) as Collection;
}

export async function dropCollection(sql: Sql, name: string): Promise<void> {
  checkCollectionName(name);
  await sql.unsafe(`DROP INDEX IF EXISTS ${indexName(name)}`);
  await sql`DELETE FROM document_collections WHERE name = ${name}`;
}

/**
 * Adds (or replaces, by id) documents, then makes sure the collection's HNSW index exists: built once
 * over the first bulk insert, grown by later ones.
 */
export async function addDocuments(sql: Sql, collection: Collection, documents: readonly StoredDocument[]) {
  for (const doc of documents) {
    if (doc.embedding.length !== collection.dim)
      throw new Error(
        `document ${doc.id}: embedding has ${doc.embedding.length} values, not ${collection.dim}`,
      );
  }
  for (let first = 0; first < documents.length; first += INSERT_BATCH) {
    const rows = documents.slice(first, first + INSERT_BATCH).map((doc) => ({
      collection: collection.name,
      id: doc.id,
      text: doc.text,
      metadata_json: doc.metadataJson,
      embedding: toVector(doc.embedding),
    }));
    await sql`
      INSERT INTO documents ${sql(rows)}
      ON CONFLICT (collection, id) DO UPDATE
        SET text = EXCLUDED.text, metadata_json = EXCLUDED.metadata_json, embedding = EXCLUDED.embedding`;
  }
  await sql`UPDATE document_collections SET updated_at = now() WHERE name = ${collection.name}`;
  // a partial index per collection: the predicate names it (checked against COLLECTION_NAME) and the
  // expression fixes the width, as pgvector indexes need one dimension
  await sql.unsafe(
    `CREATE INDEX IF NOT EXISTS ${indexName(collection.name)} ON documents
     USING hnsw ((embedding::vector(${collection.dim})) vector_cosine_ops)
     WHERE collection = '${collection.name}'`,
  );
}

export async function findCollection(sql: Sql, name: string): Promise<Collection | null> {
  const [row] = await sql`
    SELECT c.*, (SELECT count(*)::int FROM documents d WHERE d.collection = c.name) AS count
    FROM document_collections c WHERE c.name = ${checkCollectionName(name)}`;
  return row ? toCollection(row) : null;
}

export async function getCollection(sql: Sql, name: string): Promise<Collection> {
  const collection = await findCollection(sql, name);
  if (!collection) {
    const names = (await listCollections(sql)).map((c) => c.name);
    throw new UserInputError(
      `no collection "${name}"; ${names.length ? `collections: ${names.join(', ')}` : 'none indexed yet (IndexDocuments or `loupe demo shop index`)'}`,
      'NOT_FOUND',
    );
  }
  return collection;
}

export async function listCollections(sql: Sql): Promise<Collection[]> {
  const rows = await sql`
    SELECT c.*, (SELECT count(*)::int FROM documents d WHERE d.collection = c.name) AS count
    FROM document_collections c ORDER BY c.name`;
  return rows.map(toCollection);
}

/**
 * The k documents nearest (cosine) to `query`. By default through the collection's HNSW index with
 * ef_search set for this query only; `exact` scans every row (the reference the index is tested on).
 */
export async function searchCollection(
  sql: Sql,
  collection: Collection,
  query: ArrayLike<number>,
  options: { k: number; efSearch?: number; exact?: boolean; embeddings?: boolean },
): Promise<Hit[]> {
  const { k } = options;
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw new UserInputError(`k must be 1-${MAX_K}, got ${k}`);
  if (query.length !== collection.dim)
    throw new UserInputError(
      `the query embedding has ${query.length} values; collection "${collection.name}" holds ${collection.dim}`,
    );
  // expression and predicate spelled as in the partial index (name checked, width an integer)
  const rows = await nearestByCosine(sql, {
    table: 'documents',
    column: 'embedding',
    where: `collection = '${checkCollectionName(collection.name)}'`,
    columns: `id, text, metadata_json${options.embeddings ? ', embedding::text AS embedding' : ''}`,
    query,
    k,
    efSearch: options.efSearch,
    exact: options.exact,
  });
  return rows.map(
    (r): Hit => ({
      id: r.id as string,
      text: r.text as string,
      metadataJson: r.metadata_json as string,
      score: Number(r.similarity),
      ...(options.embeddings ? { embedding: fromVector(r.embedding as string) } : {}),
    }),
  );
}

/** Every stored embedding of a collection, by id (for brute-force references and the evaluation). */
export async function collectionEmbeddings(sql: Sql, name: string): Promise<Map<string, number[]>> {
  const rows = await sql`
    SELECT id, embedding::text AS embedding FROM documents WHERE collection = ${checkCollectionName(name)} ORDER BY id`;
  return new Map(rows.map((r) => [r.id as string, fromVector(r.embedding as string)]));
}

function toCollection(row: Record<string, unknown>): Collection {
  return {
    name: row.name as string,
    model: row.model as string,
    modelSha256: row.model_sha256 as string,
    hook: row.hook as string,
    pooling: row.pooling as Pooling,
    dim: Number(row.dim),
    count: Number(row.count),
    createdAt: row.created_at as Date,
    updatedAt: row.updated_at as Date,
  };
}
