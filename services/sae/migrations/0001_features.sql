-- SAEs and their features. A feature's decoder direction is a pgvector `vector`; SAEs of different
-- widths d_in share the table, and each d_in gets its own HNSW cosine index over `decoder::vector(d)`
-- (created by the store when the first SAE of that width arrives), since an index needs one dimension.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE saes (
  id text PRIMARY KEY,
  model text NOT NULL,
  hook text NOT NULL,
  architecture text NOT NULL,
  d_in integer NOT NULL CHECK (d_in > 0),
  d_sae integer NOT NULL CHECK (d_sae > 0),
  cfg jsonb NOT NULL,
  weights_path text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE features (
  sae_id text NOT NULL REFERENCES saes (id) ON DELETE CASCADE,
  index integer NOT NULL,
  d_in integer NOT NULL,
  decoder vector NOT NULL,
  PRIMARY KEY (sae_id, index)
);
