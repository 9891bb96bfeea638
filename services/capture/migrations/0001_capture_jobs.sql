-- Capture jobs: durable rows, resumable from their last checkpoint (windows_done), claimed by one
-- worker at a time (heartbeat_at goes stale when a worker dies).
CREATE TABLE capture_jobs (
  id uuid PRIMARY KEY,
  status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
  phase text NOT NULL DEFAULT 'capture' CHECK (phase IN ('capture', 'records', 'done')),
  model text NOT NULL,
  model_sha256 text NOT NULL,
  dataset text NOT NULL,
  hooks text[] NOT NULL,
  max_tokens bigint NOT NULL,
  params jsonb NOT NULL,
  params_key text NOT NULL,
  total_windows bigint NOT NULL,
  total_tokens bigint NOT NULL,
  -- sha256 of every window's token ids: a resumed job refuses a dataset that changed under it
  windows_sha256 text NOT NULL,
  windows_done bigint NOT NULL DEFAULT 0,
  tokens_done bigint NOT NULL DEFAULT 0,
  worker text,
  heartbeat_at timestamptz,
  attempts integer NOT NULL DEFAULT 0,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
-- at most one unfinished job per parameter set, so two identical commands started together share it
CREATE UNIQUE INDEX capture_jobs_one_unfinished ON capture_jobs (params_key) WHERE status IN ('queued', 'running', 'failed');

-- One safetensors file per (hook, shard): [tokens, width] float32 activations for SAE training.
CREATE TABLE activation_shards (
  job_id uuid NOT NULL REFERENCES capture_jobs (id) ON DELETE CASCADE,
  hook text NOT NULL,
  shard integer NOT NULL,
  path text NOT NULL,
  first_window bigint NOT NULL,
  windows integer NOT NULL,
  tokens bigint NOT NULL,
  width integer NOT NULL,
  PRIMARY KEY (job_id, hook, shard)
);

-- The token windows that records point at.
CREATE TABLE record_windows (
  job_id uuid NOT NULL REFERENCES capture_jobs (id) ON DELETE CASCADE,
  window_index bigint NOT NULL,
  document_id text NOT NULL,
  start_token integer NOT NULL,
  token_ids integer[] NOT NULL,
  PRIMARY KEY (job_id, window_index)
);

-- Per neuron of an mlp.hook_post: statistics, the activation histogram over the random sample (bins
-- between min and max activation), the top windows by max activation, and where the full records
-- (per-token values of top, random and quantile windows) are: one safetensors file per hook, one row
-- per neuron in each of its tensors.
CREATE TABLE neuron_records (
  job_id uuid NOT NULL REFERENCES capture_jobs (id) ON DELETE CASCADE,
  model text NOT NULL,
  hook text NOT NULL,
  neuron integer NOT NULL,
  max_activation double precision NOT NULL,
  min_activation double precision NOT NULL,
  mean_activation double precision NOT NULL,
  fraction_nonzero double precision NOT NULL,
  tokens bigint NOT NULL,
  histogram integer[] NOT NULL,
  top_windows integer[] NOT NULL,
  top_max real[] NOT NULL,
  records_file text NOT NULL,
  PRIMARY KEY (job_id, hook, neuron)
);
CREATE INDEX neuron_records_unit ON neuron_records (model, hook, neuron);
