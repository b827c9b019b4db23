-- thumbd schema, version 2: whether a job's queue message was published (for the sweeper).
-- Jobs that existed before were published by the process that created them.

ALTER TABLE jobs ADD COLUMN published INTEGER NOT NULL DEFAULT 1;
CREATE INDEX jobs_unpublished ON jobs (created_at) WHERE published = 0 AND status = 'queued';
