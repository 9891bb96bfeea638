-- Job lists page newest first (ORDER BY created_at DESC, id DESC, after a cursor's (created_at, id)):
-- this index makes every page a short index scan however many jobs the table holds.
CREATE INDEX capture_jobs_newest ON capture_jobs (created_at DESC, id DESC);
