-- thumbd schema, version 1. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE jobs (
    id             TEXT PRIMARY KEY,
    environment    TEXT NOT NULL,
    thumbnail_id   TEXT NOT NULL,
    status         TEXT NOT NULL,
    source         TEXT NOT NULL,          -- JSON, SPEC §5 "source"
    reply_to       TEXT,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER,
    attempts       INTEGER NOT NULL DEFAULT 0,
    result         TEXT,                   -- JSON JobResult when succeeded
    error_code     TEXT,
    error_message  TEXT
);
CREATE INDEX jobs_finished_at ON jobs (finished_at);

CREATE TABLE thumbnails (
    environment     TEXT NOT NULL,
    thumbnail_id    TEXT NOT NULL,
    job_id          TEXT NOT NULL,
    job_created_at  INTEGER NOT NULL,
    result          TEXT NOT NULL,         -- JSON JobResult
    blob_key        TEXT NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (environment, thumbnail_id)
);
CREATE INDEX thumbnails_blob_key ON thumbnails (blob_key);

-- Contexts (ClassKit): each references at most one thumbnail.
CREATE TABLE contexts (
    environment   TEXT NOT NULL,
    context_id    TEXT NOT NULL,
    thumbnail_id  TEXT NOT NULL,
    body          TEXT NOT NULL,           -- JSON as the client sent it
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (environment, context_id)
);
CREATE INDEX contexts_thumbnail ON contexts (environment, thumbnail_id);

-- Upload tickets (Decathlon / Safe Creative).
CREATE TABLE uploads (
    ticket        TEXT PRIMARY KEY,
    blob_key      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX uploads_expires_at ON uploads (expires_at);

-- Idempotency-Key → first job, per client and environment, kept 24 h.
CREATE TABLE idempotency_keys (
    client       TEXT NOT NULL,
    environment  TEXT NOT NULL,
    key          TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (client, environment, key)
);

-- The embedded persistent queue (SqliteJobQueue).
CREATE TABLE queue (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    payload      BLOB NOT NULL,
    enqueued_at  INTEGER NOT NULL,
    visible_at   INTEGER NOT NULL,          -- delivered when visible_at <= now
    deliveries   INTEGER NOT NULL DEFAULT 0,
    lease_nonce  INTEGER,                   -- set while leased
    dead_at      INTEGER,
    dead_reason  TEXT
);
CREATE INDEX queue_ready ON queue (dead_at, visible_at, id);
