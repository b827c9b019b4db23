-- Blobs kept in the database (SqliteBlobStore): the embedded mode keeps originals here, so a
-- job's short-lived claim check costs no file creation and deletion.
CREATE TABLE blobs (
    key         TEXT PRIMARY KEY,
    bytes       BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
