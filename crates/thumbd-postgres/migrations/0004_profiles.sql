-- The profile a job makes (README, "Renditions"); NULL: the worker's default profile. A
-- thumbnail's renditions live in its `result` JSON, so a replace swaps the whole set in the
-- one row update that makes the new job's result current.
ALTER TABLE jobs ADD COLUMN profile text;

-- Every blob a result references: its main `blobKey` and each rendition's.
CREATE FUNCTION thumbd_blob_keys(r json) RETURNS SETOF text LANGUAGE sql IMMUTABLE AS $$
    SELECT r->>'blobKey'
    UNION
    SELECT e->>'blobKey' FROM json_array_elements(COALESCE(r->'renditions', '[]'::json)) e
$$;

-- As 0001's, with a set of blobs per result: what is orphaned is every blob of the result
-- that stops (or never starts) being served that the served one does not reference.
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
        SELECT job_id, job_created_at, result INTO t FROM thumbnails
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
        orphaned := ARRAY(SELECT thumbd_blob_keys(p_result));
    ELSE
        orphaned := ARRAY(SELECT thumbd_blob_keys(t.result)
                          EXCEPT SELECT thumbd_blob_keys(p_result));
        UPDATE thumbnails SET job_id = p_job, job_created_at = j.created_at,
            result = p_result, blob_key = p_blob_key, updated_at = p_now
            WHERE environment = j.environment AND thumbnail_id = j.thumbnail_id;
    END IF;
    PERFORM pg_notify(p_channel, p_job::text);
END
$$;
