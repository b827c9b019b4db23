-- thumbd schema, version 3: the idempotency-key purge deletes by age.

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
