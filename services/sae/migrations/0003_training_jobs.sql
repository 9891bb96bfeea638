-- SAE training jobs: durable rows claimed by one worker at a time (heartbeat_at goes stale when a
-- worker dies; see @loupe/common/db jobs.ts), resumable from the last checkpoint under
-- $LOUPE_DATA_DIR/sae-jobs/<id>/checkpoints. Phases: train -> evaluate -> (features) -> done.
CREATE TABLE training_jobs (
  id uuid PRIMARY KEY,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  phase text NOT NULL DEFAULT 'train' CHECK (phase IN ('train', 'evaluate', 'features', 'done')),
  -- the TrainRequest with every default filled in: what the job trains
  request jsonb NOT NULL,
  params_key text NOT NULL,
  -- the library id the trained SAE gets
  sae_id text NOT NULL,
  step integer NOT NULL DEFAULT 0,
  steps integer NOT NULL CHECK (steps > 0),
  tokens bigint NOT NULL DEFAULT 0,
  loss double precision,
  l0 double precision,
  dead_fraction double precision,
  dense_fraction double precision,
  -- tokens the dead / dense fractions are over
  activity_window_tokens bigint,
  -- step of the newest durable checkpoint (what a restart resumes from)
  checkpoint_step integer NOT NULL DEFAULT 0,
  worker text,
  heartbeat_at timestamptz,
  attempts integer NOT NULL DEFAULT 0,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
-- at most one unfinished job per request, so two identical requests share one job
CREATE UNIQUE INDEX training_jobs_one_unfinished ON training_jobs (params_key) WHERE status IN ('queued', 'running', 'failed');

-- How a library SAE came to be: the architecture it was trained as (topk, batchtopk, relu, jumprelu; null
-- when imported), its held-out metrics (EvalMetrics of proto/loupe/v1/sae.proto, camelCase keys), and
-- the job that trained it.
ALTER TABLE saes ADD COLUMN trained_as text;
ALTER TABLE saes ADD COLUMN metrics jsonb;
ALTER TABLE saes ADD COLUMN training_job_id uuid REFERENCES training_jobs (id) ON DELETE SET NULL;
