-- thumbd schema, version 7: one row whose sequence every `make_durable` bumps. A commit that
-- changes nothing writes no WAL frame and syncs nothing, so the power-safe commit that makes
-- a finished job durable must always change a row: setting `published` again does not (it
-- is usually set already, and SQLite skips writing identical bytes).

CREATE TABLE durable_marks (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     INTEGER NOT NULL,
    job_id  TEXT                     -- the last job made durable (for diagnosis)
);
INSERT INTO durable_marks (id, seq) VALUES (1, 0);
