//! The schema: embedded SQL files, each applied once, in order, recorded in
//! `thumbd_migrations` (the same bookkeeping as the SQLite backend).

use sqlx::PgPool;
use thumbd_jobs::{Result, Timestamp};

/// The schema, in order: version, name, SQL.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (
        2,
        "published",
        include_str!("../migrations/0002_published.sql"),
    ),
    (
        3,
        "idempotency_purge",
        include_str!("../migrations/0003_idempotency_purge.sql"),
    ),
    (
        4,
        "finish_succeeded",
        include_str!("../migrations/0004_finish_succeeded.sql"),
    ),
    (
        5,
        "unpublished_started",
        include_str!("../migrations/0005_unpublished_started.sql"),
    ),
    (
        6,
        "announce_record",
        include_str!("../migrations/0006_announce_record.sql"),
    ),
    (
        7,
        "payload_plpgsql",
        include_str!("../migrations/0007_payload_plpgsql.sql"),
    ),
    (8, "tenants", include_str!("../migrations/0008_tenants.sql")),
];

/// The advisory lock class migrations take; the second key is the schema's hash, so tests
/// migrating their own schemas of one database do not wait for each other.
const MIGRATE_LOCK_CLASS: i32 = 0x7468_6d62; // "thmb"

/// Applies the migrations not yet applied to the first schema of the `search_path`; returns
/// how many ran.
///
/// Safe when several processes start at once: they take one transaction-scoped advisory lock,
/// and everything pending runs in that one transaction, so a failure applies nothing.
pub(crate) async fn run(pool: &PgPool) -> Result<usize> {
    // Up to date, the common case: answered without DDL or a lock, so a role that may not
    // create tables can still start on a migrated database.
    if pending(pool).await?.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))")
        .bind(MIGRATE_LOCK_CLASS)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS thumbd_migrations \
         (version bigint PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    // Read again under the lock: another process may have migrated while we waited.
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM thumbd_migrations")
        .fetch_all(&mut *tx)
        .await?;
    let mut ran = 0;
    for &(version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO thumbd_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(name)
        .bind(Timestamp::now().0)
        .execute(&mut *tx)
        .await?;
        tracing::info!(version, name, "applied PostgreSQL migration");
        ran += 1;
    }
    tx.commit().await?;
    Ok(ran)
}

/// The versions not applied yet, read without taking any lock.
async fn pending(pool: &PgPool) -> Result<Vec<i64>> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('thumbd_migrations')::text")
        .fetch_one(pool)
        .await?;
    let applied: Vec<i64> = match table {
        Some(_) => {
            sqlx::query_scalar("SELECT version FROM thumbd_migrations")
                .fetch_all(pool)
                .await?
        }
        None => Vec::new(),
    };
    Ok(MIGRATIONS
        .iter()
        .map(|&(version, _, _)| version)
        .filter(|v| !applied.contains(v))
        .collect())
}
