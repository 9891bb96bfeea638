-- Explanations of units with the score that was measured for them. One row per (explanation, scoring
-- run): the same sentence scored by two simulators is two rows, each with its own provenance.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE explanations (
  id uuid PRIMARY KEY,
  unit text NOT NULL,
  explanation text NOT NULL,
  -- simulation, detection or fuzzing
  method text NOT NULL,
  score double precision,
  top_only double precision,
  random_only double precision,
  ci_low double precision,
  ci_high double precision,
  reason text,
  explainer_model text,
  simulator_model text NOT NULL,
  prompt_version text NOT NULL,
  -- record ids, seed, failures, bootstrap samples
  provenance jsonb NOT NULL,
  prompt_tokens bigint NOT NULL DEFAULT 0,
  completion_tokens bigint NOT NULL DEFAULT 0,
  llm_calls integer NOT NULL DEFAULT 0,
  -- filled when an embeddings server is configured (semantic search); any dimension
  embedding vector,
  search tsvector GENERATED ALWAYS AS (to_tsvector('english', explanation)) STORED,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX explanations_unit ON explanations (unit text_pattern_ops);
CREATE INDEX explanations_search ON explanations USING gin (search);
