-- Webhooks: the SQLite schema's tables, with the same meaning (the queue is RabbitMQ's).
-- Every integer is bigint, as SQLite's INTEGER, so rows decode the same way.

CREATE TABLE webhooks (
    environment  text NOT NULL,
    webhook_id   text NOT NULL,
    url          text NOT NULL,
    events       text NOT NULL,
    secret       text NOT NULL,
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    disabled_at  bigint,
    PRIMARY KEY (environment, webhook_id)
);

CREATE TABLE webhook_deliveries (
    id             bigserial PRIMARY KEY,
    environment    text NOT NULL,
    webhook_id     text NOT NULL,
    event_id       text NOT NULL,
    type           text NOT NULL,
    job_id         text,
    data           text,
    created_at     bigint NOT NULL,
    dispatch_at    bigint,
    state          text NOT NULL
                   CHECK (state IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts       bigint NOT NULL DEFAULT 0,
    next_attempt_at bigint,
    UNIQUE (environment, webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_dispatch ON webhook_deliveries (dispatch_at)
    WHERE dispatch_at IS NOT NULL;
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (state) WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  bigint NOT NULL,
    environment  text NOT NULL,
    webhook_id   text NOT NULL,
    event_id     text NOT NULL,
    type         text NOT NULL,
    attempt      bigint NOT NULL,
    at           bigint NOT NULL,
    status       bigint,
    error        text,
    duration_ms  bigint NOT NULL,
    next_retry_at bigint
);
CREATE INDEX webhook_attempts_listing ON webhook_attempts (environment, webhook_id, id);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);
