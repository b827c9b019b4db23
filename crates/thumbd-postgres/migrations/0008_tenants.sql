-- thumbd schema, version 8: tenants (SPEC §8). Client keys are scoped by namespace: the
-- `environment` columns of jobs, thumbnails, contexts and idempotency_keys hold
-- `TENANT/ENVIRONMENT`, or the environment alone for the tenant `default` (so rows written
-- before keep their meaning). Uploads had no scope at all: they get their tenant and, when
-- the upload named one, their environment.

ALTER TABLE jobs DROP CONSTRAINT jobs_environment_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_namespace_check
    CHECK (environment ~ '^([A-Za-z0-9._-]{1,64}/)?(development|production)$');

ALTER TABLE uploads ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE uploads ADD COLUMN environment text;
