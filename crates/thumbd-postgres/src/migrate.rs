//! The schema: embedded SQL files applied by sqlx's migrator (the same bookkeeping as the
//! SQLite backend: `_sqlx_migrations`, checksums, the database's advisory lock).

use sqlx::PgPool;
use thumbd_jobs::Result;
use thumbd_jobs::schema::{self, SchemaFile};

/// The schema files, in order (append only).
const SCHEMA: &[SchemaFile] = &[
    (1, "initial", include_str!("../migrations/0001_initial.sql")),
    (2, "listing", include_str!("../migrations/0002_listing.sql")),
    (
        3,
        "webhooks",
        include_str!("../migrations/0003_webhooks.sql"),
    ),
    (
        4,
        "profiles",
        include_str!("../migrations/0004_profiles.sql"),
    ),
];

/// Applies the migrations not yet applied to the first schema of the `search_path`; returns
/// how many ran. Safe when several processes start at once: sqlx's migrator holds an
/// advisory lock while it applies, and each migration runs in its own transaction.
pub(crate) async fn run(pool: &PgPool) -> Result<usize> {
    let migrator = schema::migrator(SCHEMA);
    // Up to date, the common case: answered without DDL or a lock, so a role that may not
    // create tables can still start on a migrated database.
    if applied(pool).await?.len() >= SCHEMA.len() {
        return Ok(0);
    }
    let mut conn = pool.acquire().await?;
    schema::apply(&migrator, &mut *conn).await
}

/// The versions applied, read without DDL (none when the bookkeeping table does not exist).
async fn applied(pool: &PgPool) -> Result<Vec<i64>> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await?;
    if table.is_none() {
        return Ok(Vec::new());
    }
    Ok(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?,
    )
}
