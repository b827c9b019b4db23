-- thumbd schema for PostgreSQL, version 2: whether a job's queue message was published (for
-- the sweeper). Jobs that existed before were published by the process that created them.

ALTER TABLE jobs ADD COLUMN published boolean NOT NULL DEFAULT true;
CREATE INDEX jobs_unpublished ON jobs (created_at) WHERE NOT published AND status = 'queued';
