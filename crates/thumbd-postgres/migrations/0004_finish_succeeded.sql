-- thumbd schema for PostgreSQL, version 4: a job's success recorded in one round trip.
--
-- The steps `finish_succeeded` used to send one by one (lock the job; mark it succeeded;
-- lock or create its thumbnail row; point the thumbnail at it unless a job accepted later
-- already did; announce it), run server-side: one statement, so one transaction, instead of
-- seven round trips each waking a backend. Each statement inside sees the latest commits
-- (READ COMMITTED), so the loop below behaves as the client-side one did.
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
