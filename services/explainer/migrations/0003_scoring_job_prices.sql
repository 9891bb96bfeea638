-- The LLM prices in force when a job was created (US dollars per million tokens; 0 = unpriced), so a
-- job's cost, prompt_tokens × price_prompt + completion_tokens × price_completion, stays what it was
-- priced at even after the configuration changes, and keeps accumulating when a worker resumes it.
ALTER TABLE scoring_jobs
  ADD COLUMN price_prompt_usd_per_mtok double precision NOT NULL DEFAULT 0
    CHECK (price_prompt_usd_per_mtok >= 0),
  ADD COLUMN price_completion_usd_per_mtok double precision NOT NULL DEFAULT 0
    CHECK (price_completion_usd_per_mtok >= 0);
