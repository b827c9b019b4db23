-- thumbd schema for PostgreSQL, version 6: a finished job is announced with its record.
--
-- The `NOTIFY` of a finished job carried its id, and every API process waiting for it read
-- the record back. It now carries the record itself, as JSON of the columns a read returns
-- (bytea as hex), unless that would not fit a notification (8000 bytes): then the id alone.
CREATE FUNCTION thumbd_job_payload(j jobs) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN octet_length(p) <= 7900 THEN p ELSE j.id::text END
    FROM (SELECT json_build_object(
        'id', j.id::text,
        'environment', j.environment,
        'thumbnail_id', encode(j.thumbnail_id, 'hex'),
        'status', j.status,
        'source', j.source,
        'reply_to', encode(j.reply_to, 'hex'),
        'created_at', j.created_at,
        'started_at', j.started_at,
        'finished_at', j.finished_at,
        'attempts', j.attempts,
        'result', j.result,
        'error_code', j.error_code,
        'error_message', j.error_message
    )::text AS p) AS payload
$$;

-- Version 4's function, announcing the record.
CREATE OR REPLACE FUNCTION thumbd_finish_succeeded(
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
            PERFORM pg_notify(p_channel, thumbd_job_payload(jobs)) FROM jobs WHERE id = p_job;
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
    PERFORM pg_notify(p_channel, thumbd_job_payload(jobs)) FROM jobs WHERE id = p_job;
END
$$;
