-- thumbd schema, version 5: a retry (the worker's own verdict on a transient failure) is not
-- a lost delivery. `deliveries` counts deliveries that were never settled or were given up
-- on; `retries` counts retries, which only pace the backoff.

ALTER TABLE queue ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
