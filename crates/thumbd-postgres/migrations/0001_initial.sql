-- thumbd's schema for PostgreSQL. With PostgreSQL the queue is RabbitMQ, so there is no
-- `queue` table; otherwise the tables are the SQLite schema's, with the same meaning.
-- Applied by sqlx's migrator (recorded in `_sqlx_migrations`); from here on, migrations are
-- append-only: a change is a new file, never an edit of an applied one.
--
-- Times are bigint milliseconds since the Unix epoch (UTC): thumbd's Timestamp, stored
-- exactly, compared as integers.
-- Strings a client chooses freely (thumbnail and context ids, replyTo, idempotency client and
-- key) are bytea holding UTF-8: any character is allowed, and text cannot hold NUL.
-- JSON is `json`, not `jsonb`: kept as written, and `jsonb` refuses the \u0000 escape.
-- Client keys are scoped by namespace: every `environment` column holds
-- `TENANT/ENVIRONMENT`, or the environment alone for the tenant `default`.

CREATE TABLE jobs (
    id             uuid PRIMARY KEY,
    environment    text NOT NULL
                   CHECK (environment ~ '^([A-Za-z0-9._-]{1,64}/)?(development|production)$'),
    thumbnail_id   bytea NOT NULL,
    status         text NOT NULL
                   CHECK (status IN ('queued', 'processing', 'succeeded', 'failed')),
    source         json NOT NULL,          -- the job message's "source"
    reply_to       bytea,
    created_at     bigint NOT NULL,
    started_at     bigint,
    finished_at    bigint,
    attempts       integer NOT NULL DEFAULT 0,
    result         json,                   -- JobResult when succeeded
    error_code     text,
    error_message  text,
    -- Whether the job's queue message was published; the sweeper publishes the others.
    published      boolean NOT NULL DEFAULT true
);
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_unpublished ON jobs (created_at)
    WHERE NOT published AND status IN ('queued', 'processing');

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

-- Upload tickets, scoped by tenant and, when the upload named one, environment.
CREATE TABLE uploads (
    ticket        text PRIMARY KEY,
    blob_key      text NOT NULL,
    content_type  text NOT NULL,
    bytes         bigint NOT NULL,
    created_at    bigint NOT NULL,
    expires_at    bigint NOT NULL,
    tenant        text NOT NULL DEFAULT 'default',
    environment   text
);
CREATE INDEX uploads_expires_at ON uploads (expires_at);

-- Idempotency-Key → first job, per client and namespace, kept 24 h.
CREATE TABLE idempotency_keys (
    client       bytea NOT NULL,
    environment  text NOT NULL,
    key          bytea NOT NULL,
    job_id       uuid NOT NULL,
    created_at   bigint NOT NULL,
    PRIMARY KEY (client, environment, key)
);
-- The purge deletes by age.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- A job's success in one round trip: lock the job; mark it succeeded; lock or create its
-- thumbnail row; point the thumbnail at it unless a job accepted later already did; announce
-- its id on `p_channel` (NOTIFY, delivered on commit). One statement, so one transaction;
-- each statement inside sees the latest commits (READ COMMITTED).
CREATE FUNCTION thumbd_finish_succeeded(
    p_job uuid,
    p_now bigint,
    p_result json,
    p_blob_key text,
    p_channel text,
    OUT applied boolean,
    OUT is_current boolean,
    OUT orphaned text[]
) LANGUAGE plpgsql AS $$
DECLARE
    j record;
    t record;
BEGIN
    applied := false;
    is_current := false;
    orphaned := ARRAY[]::text[];
    -- The job's row lock makes a redelivery of the same job wait here, then see it finished.
    SELECT environment, thumbnail_id, status, created_at INTO j
        FROM jobs WHERE id = p_job FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'job % vanished before it finished', p_job USING ERRCODE = 'P0002';
    END IF;
    IF j.status IN ('succeeded', 'failed') THEN
        RETURN;
    END IF;
    UPDATE jobs SET status = 'succeeded', finished_at = p_now, result = p_result,
        error_code = NULL, error_message = NULL
        WHERE id = p_job;
    applied := true;
    is_current := true;
    -- Lock the current thumbnail, or create it: jobs of one thumbnail finishing at once take
    -- turns here, and each decides against what the one before committed.
    LOOP
        SELECT job_id, job_created_at, blob_key INTO t FROM thumbnails
            WHERE environment = j.environment AND thumbnail_id = j.thumbnail_id FOR UPDATE;
        EXIT WHEN FOUND;
        INSERT INTO thumbnails (environment, thumbnail_id, job_id, job_created_at, result,
                                blob_key, updated_at)
            VALUES (j.environment, j.thumbnail_id, p_job, j.created_at, p_result, p_blob_key,
                    p_now)
            ON CONFLICT (environment, thumbnail_id) DO NOTHING;
        IF FOUND THEN
            PERFORM pg_notify(p_channel, p_job::text);
            RETURN;
        END IF;
        -- Another job's finish created it after our SELECT (the INSERT waited for that
        -- commit): go round and lock that row.
    END LOOP;
    -- Same order as SQLite's (created_at, id text): UUIDs order by their bytes, which is the
    -- order of their lowercase hex.
    IF (t.job_created_at, t.job_id) > (j.created_at, p_job) THEN
        -- A job accepted later already replaced it: ours is not served.
        is_current := false;
        orphaned := ARRAY[p_blob_key];
    ELSE
        IF t.blob_key <> p_blob_key THEN
            orphaned := ARRAY[t.blob_key];
        END IF;
        UPDATE thumbnails SET job_id = p_job, job_created_at = j.created_at,
            result = p_result, blob_key = p_blob_key, updated_at = p_now
            WHERE environment = j.environment AND thumbnail_id = j.thumbnail_id;
    END IF;
    PERFORM pg_notify(p_channel, p_job::text);
END
$$;
