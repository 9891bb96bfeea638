-- Document embeddings (the shop demo's product search): a collection is documents embedded with one
-- model at one hook with one pooling, so every vector in it is comparable. Each collection gets its own
-- partial HNSW cosine index over `embedding::vector(dim)`, created by the store after the first bulk
-- insert (building over existing rows is far faster than growing the graph row by row), since an
-- index needs one dimension and collections of different widths share the table.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE document_collections (
  name text PRIMARY KEY,
  model text NOT NULL,
  model_sha256 text NOT NULL,
  hook text NOT NULL,
  pooling text NOT NULL,
  dim integer NOT NULL CHECK (dim > 0 AND dim <= 2000),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
  collection text NOT NULL REFERENCES document_collections (name) ON DELETE CASCADE,
  id text NOT NULL,
  text text NOT NULL,
  -- the caller's JSON, returned verbatim with results
  metadata_json text NOT NULL,
  embedding vector NOT NULL,
  PRIMARY KEY (collection, id)
);
