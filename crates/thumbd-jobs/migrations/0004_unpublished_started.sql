-- thumbd schema, version 4: the sweeper also looks at unpublished jobs that were started. A
-- job `thumbd serve` runs straight from its request is never published unless it overruns
-- its wait; one whose process died mid-run is left `processing` and unpublished.

DROP INDEX jobs_unpublished;
CREATE INDEX jobs_unpublished ON jobs (created_at)
    WHERE published = 0 AND status IN ('queued', 'processing');
