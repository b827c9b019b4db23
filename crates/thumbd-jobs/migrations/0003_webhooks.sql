-- Webhooks (README, "Webhooks"): endpoints per namespace, the deliveries of each event to
-- each endpoint (written in the same transaction as the change they announce: an outbox),
-- and the attempts made at each.

-- A queue lane per kind of work: image jobs and webhook deliveries each have their own
-- consumers, so one never waits behind the other.
ALTER TABLE queue ADD COLUMN lane TEXT NOT NULL DEFAULT 'jobs';
DROP INDEX queue_ready;
CREATE INDEX queue_ready ON queue (lane, dead_at, visible_at, id);

CREATE TABLE webhooks (
    environment  TEXT NOT NULL,
    webhook_id   TEXT NOT NULL,
    url          TEXT NOT NULL,
    events       TEXT NOT NULL,          -- ",job.succeeded,job.failed," (matched with LIKE)
    secret       TEXT NOT NULL,          -- whsec_…
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    disabled_at  INTEGER,                -- set when the endpoint answered 410 Gone
    PRIMARY KEY (environment, webhook_id)
);

CREATE TABLE webhook_deliveries (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    environment    TEXT NOT NULL,
    webhook_id     TEXT NOT NULL,
    event_id       TEXT NOT NULL,        -- the `webhook-id` header: the same on every attempt
    type           TEXT NOT NULL,
    job_id         TEXT,                 -- job events: the data is the job's status body
    data           TEXT,                 -- other events: the data, JSON
    created_at     INTEGER NOT NULL,
    -- Until its queue message is pushed: when a dispatcher may (re)try pushing it.
    dispatch_at    INTEGER,
    state          TEXT NOT NULL,        -- pending | delivered | failed | cancelled
    attempts       INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    UNIQUE (environment, webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_dispatch ON webhook_deliveries (dispatch_at)
    WHERE dispatch_at IS NOT NULL;
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (state) WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  INTEGER NOT NULL,
    environment  TEXT NOT NULL,
    webhook_id   TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    type         TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    status       INTEGER,                -- the endpoint's HTTP status, if it answered
    error        TEXT,                   -- why not, otherwise
    duration_ms  INTEGER NOT NULL,
    next_retry_at INTEGER                -- none: delivered, or given up
);
CREATE INDEX webhook_attempts_listing ON webhook_attempts (environment, webhook_id, id);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);
