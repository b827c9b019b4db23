-- Listing jobs newest first, a page at a time, on an index: per namespace, and per status
-- (a `code` filter reads the namespace's failed jobs).
CREATE INDEX jobs_listing ON jobs (environment, created_at, id);
CREATE INDEX jobs_listing_status ON jobs (environment, status, created_at, id);
