-- thumbd schema for PostgreSQL, version 5: the sweeper also looks at unpublished jobs that
-- were started (the same change as the SQLite schema's version 4, for one `MetaStore`
-- contract).

DROP INDEX jobs_unpublished;
CREATE INDEX jobs_unpublished ON jobs (created_at)
    WHERE NOT published AND status IN ('queued', 'processing');
