-- thumbd's schema for SQLite (`thumbd serve`'s store and queue, one file in WAL mode).
-- Applied by sqlx's migrator (recorded in `_sqlx_migrations`); from here on, migrations are
-- append-only: a change is a new file, never an edit of an applied one.
--
-- Times are INTEGER milliseconds since the Unix epoch (UTC). JSON columns are TEXT.
-- Client keys are scoped by namespace: every `environment` column holds
-- `TENANT/ENVIRONMENT`, or the environment alone for the tenant `default`.

CREATE TABLE jobs (
    id             TEXT PRIMARY KEY,
    environment    TEXT NOT NULL,
    thumbnail_id   TEXT NOT NULL,
    status         TEXT NOT NULL,
    source         TEXT NOT NULL,          -- JSON, the job message's "source"
    reply_to       TEXT,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER,
    attempts       INTEGER NOT NULL DEFAULT 0,
    result         TEXT,                   -- JSON JobResult when succeeded
    error_code     TEXT,
    error_message  TEXT,
    -- Whether the job's queue message was published; the sweeper publishes the others. A
    -- job `thumbd serve` runs straight from its request is published only if it overruns its
    -- wait, and one whose process died mid-run is left `processing` and unpublished.
    published      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX jobs_finished_at ON jobs (finished_at);
CREATE INDEX jobs_unpublished ON jobs (created_at)
    WHERE published = 0 AND status IN ('queued', 'processing');

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

-- Upload tickets, scoped by tenant and, when the upload named one, environment.
CREATE TABLE uploads (
    ticket        TEXT PRIMARY KEY,
    blob_key      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    tenant        TEXT NOT NULL DEFAULT 'default',
    environment   TEXT
);
CREATE INDEX uploads_expires_at ON uploads (expires_at);

-- Idempotency-Key → first job, per client and namespace, kept 24 h.
CREATE TABLE idempotency_keys (
    client       TEXT NOT NULL,
    environment  TEXT NOT NULL,
    key          TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (client, environment, key)
);
-- The purge deletes by age.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- The embedded persistent queue (SqliteJobQueue).
CREATE TABLE queue (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    payload      BLOB NOT NULL,
    enqueued_at  INTEGER NOT NULL,
    visible_at   INTEGER NOT NULL,          -- delivered when visible_at <= now
    deliveries   INTEGER NOT NULL DEFAULT 0, -- never settled, or given up on
    lease_nonce  INTEGER,                   -- set while leased
    dead_at      INTEGER,
    dead_reason  TEXT,
    retries      INTEGER NOT NULL DEFAULT 0 -- the worker's own transient verdicts: pace backoff only
);
CREATE INDEX queue_ready ON queue (dead_at, visible_at, id);

-- One row whose sequence every `make_durable` bumps. A commit that changes nothing writes no
-- WAL frame and syncs nothing, so the power-safe commit that makes a finished job durable
-- must always change a row.
CREATE TABLE durable_marks (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     INTEGER NOT NULL,
    job_id  TEXT                     -- the last job made durable (for diagnosis)
);
INSERT INTO durable_marks (id, seq) VALUES (1, 0);
