-- Which worker (host:pid) holds a running unit: a worker on the same host whose process is gone has
-- its units taken over at once instead of when their lease runs out.
ALTER TABLE scoring_job_units ADD COLUMN worker text;
