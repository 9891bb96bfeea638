-- A capture job's work, split so that several workers (processes, machines) share one job: each item
-- is a range of windows for a group of hooks, leased by one worker at a time (lease_until, renewed by
-- heartbeats; a dead worker's item is leased again once its lease runs out). An item's outputs are its
-- shard files and its record state (items/<hook>.<range>.safetensors); the job's records are built by
-- merging the item states in window order once every item is done.
CREATE TABLE capture_work_items (
  job_id uuid NOT NULL REFERENCES capture_jobs (id) ON DELETE CASCADE,
  item integer NOT NULL,
  -- which range of windows (range_index × windows_per_item) and which group of the job's hooks
  range_index integer NOT NULL,
  first_window bigint NOT NULL,
  windows integer NOT NULL,
  tokens bigint NOT NULL,
  hooks text[] NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done')),
  worker text,
  claim_token uuid,
  lease_until timestamptz,
  attempts integer NOT NULL DEFAULT 0,
  error text,
  PRIMARY KEY (job_id, item)
);
-- claims look for a job's next pending (or expired) item in order
CREATE INDEX capture_work_items_open ON capture_work_items (job_id, item) WHERE status <> 'done';
