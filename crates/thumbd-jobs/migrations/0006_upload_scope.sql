-- thumbd schema, version 6: tenants (SPEC §8). Client keys are scoped by namespace: the
-- `environment` columns of jobs, thumbnails, contexts and idempotency_keys hold
-- `TENANT/ENVIRONMENT`, or the environment alone for the tenant `default` (so rows written
-- before keep their meaning). Uploads had no scope at all: they get their tenant and, when
-- the upload named one, their environment.

ALTER TABLE uploads ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE uploads ADD COLUMN environment TEXT;
