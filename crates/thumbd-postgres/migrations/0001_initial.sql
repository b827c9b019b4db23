-- thumbd schema for PostgreSQL, version 1: the tables of the SQLite schema, without `queue`
-- (with PostgreSQL the queue is RabbitMQ).
--
-- Times are bigint milliseconds since the Unix epoch (UTC), as in SQLite: thumbd's Timestamp,
-- stored exactly, compared as integers.
-- Strings a client chooses freely (thumbnail and context ids, replyTo, idempotency client and
-- key) are bytea holding UTF-8: SPEC §2 allows any character, and text cannot hold NUL.
-- JSON is `json`, not `jsonb`: kept as written, and `jsonb` refuses the \u0000 escape.

CREATE TABLE jobs (
    id             uuid PRIMARY KEY,
    environment    text NOT NULL CHECK (environment IN ('development', 'production')),
    thumbnail_id   bytea NOT NULL,
    status         text NOT NULL
                   CHECK (status IN ('queued', 'processing', 'succeeded', 'failed')),
    source         json NOT NULL,          -- SPEC §5 "source"
    reply_to       bytea,
    created_at     bigint NOT NULL,
    started_at     bigint,
    finished_at    bigint,
    attempts       integer NOT NULL DEFAULT 0,
    result         json,                   -- JobResult when succeeded
    error_code     text,
    error_message  text
);
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE thumbnails (
    environment     text NOT NULL,
    thumbnail_id    bytea NOT NULL,
    -- The job a current thumbnail points at is never purged: the key enforces it.
    job_id          uuid NOT NULL REFERENCES jobs (id),
    job_created_at  bigint NOT NULL,
    result          json NOT NULL,         -- JobResult
    blob_key        text NOT NULL,
    updated_at      bigint NOT NULL,
    PRIMARY KEY (environment, thumbnail_id)
);
-- For the purge's "still served?" test and the foreign key check when a job is deleted.
CREATE INDEX thumbnails_job_id ON thumbnails (job_id);

-- Contexts (ClassKit): each references at most one thumbnail.
CREATE TABLE contexts (
    environment   text NOT NULL,
    context_id    bytea NOT NULL,
    thumbnail_id  bytea NOT NULL,
    body          json NOT NULL,           -- as the client sent it
    created_at    bigint NOT NULL,
    updated_at    bigint NOT NULL,
    PRIMARY KEY (environment, context_id)
);
CREATE INDEX contexts_thumbnail ON contexts (environment, thumbnail_id);

-- Upload tickets (Decathlon / Safe Creative).
CREATE TABLE uploads (
    ticket        text PRIMARY KEY,
    blob_key      text NOT NULL,
    content_type  text NOT NULL,
    bytes         bigint NOT NULL,
    created_at    bigint NOT NULL,
    expires_at    bigint NOT NULL
);
CREATE INDEX uploads_expires_at ON uploads (expires_at);

-- Idempotency-Key → first job, per client and environment, kept 24 h.
CREATE TABLE idempotency_keys (
    client       bytea NOT NULL,
    environment  text NOT NULL,
    key          bytea NOT NULL,
    job_id       uuid NOT NULL,
    created_at   bigint NOT NULL,
    PRIMARY KEY (client, environment, key)
);
