-- Batch scoring jobs. Per-unit rows are the durable state: a unit is claimed with a token and a lease
-- (FOR UPDATE SKIP LOCKED), and only the holder of the current token can mark it done, in the same
-- transaction that stores its explanation, so a restart resumes without scoring any unit twice.
CREATE TABLE scoring_jobs (
  id uuid PRIMARY KEY,
  -- queued, running, done, failed, cancelled or budget_exhausted
  status text NOT NULL DEFAULT 'queued',
  method text NOT NULL,
  -- LLM base URL (never the key), model and simulator; null base URL = the baseline
  llm jsonb NOT NULL,
  budget_tokens bigint NOT NULL DEFAULT 0,
  concurrency integer NOT NULL CHECK (concurrency > 0),
  seed bigint NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL CHECK (max_attempts > 0),
  units_total integer NOT NULL,
  units_done integer NOT NULL DEFAULT 0,
  units_failed integer NOT NULL DEFAULT 0,
  prompt_tokens bigint NOT NULL DEFAULT 0,
  completion_tokens bigint NOT NULL DEFAULT 0,
  llm_calls integer NOT NULL DEFAULT 0,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE scoring_job_units (
  job_id uuid NOT NULL REFERENCES scoring_jobs (id) ON DELETE CASCADE,
  position integer NOT NULL,
  unit text NOT NULL,
  -- pending, running, done or failed
  status text NOT NULL DEFAULT 'pending',
  attempts integer NOT NULL DEFAULT 0,
  claim_token uuid,
  lease_until timestamptz,
  explanation_id uuid REFERENCES explanations (id),
  error text,
  PRIMARY KEY (job_id, position),
  UNIQUE (job_id, unit)
);

CREATE INDEX scoring_job_units_claimable ON scoring_job_units (job_id, status, position);
