//! Applying a backend's schema with sqlx's migrator: embedded SQL files, each applied once,
//! in order, under the database's migration lock, recorded with its checksum in
//! `_sqlx_migrations`. A file changed after it was applied, or a version the binary does not
//! know (a newer thumbd migrated the database), stops the process instead of guessing.

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migrate, Migration, MigrationType, Migrator};

use crate::error::{Error, Result};

/// One embedded migration: version, description, SQL.
pub type SchemaFile = (i64, &'static str, &'static str);

/// sqlx's migrator for `files`. It does not lock by itself: [`apply`] takes the lock around
/// both its counts and the run.
pub fn migrator(files: &[SchemaFile]) -> Migrator {
    let mut migrator = Migrator::with_migrations(
        files
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    );
    migrator.locking = false;
    migrator
}

/// Runs `migrator` on `conn` under the database's migration lock (PostgreSQL: an advisory
/// lock; SQLite: none needed, one process owns the file); returns how many migrations this
/// call applied — 0 when another process applied them first.
pub async fn apply<C>(migrator: &Migrator, conn: &mut C) -> Result<usize>
where
    C: Migrate + Send,
{
    conn.lock().await?;
    let ran = apply_locked(migrator, conn).await;
    conn.unlock().await?;
    ran
}

async fn apply_locked<C: Migrate>(migrator: &Migrator, conn: &mut C) -> Result<usize> {
    let before = applied_count(migrator, conn).await?;
    migrator.run_direct(None, conn, false).await?;
    let after = applied_count(migrator, conn).await?;
    for m in migrator.iter().skip(before).take(after - before) {
        tracing::info!(version = m.version, name = %m.description, "applied schema migration");
    }
    Ok(after - before)
}

async fn applied_count<C: Migrate>(migrator: &Migrator, conn: &mut C) -> Result<usize> {
    conn.ensure_migrations_table(&migrator.table_name).await?;
    Ok(conn
        .list_applied_migrations(&migrator.table_name)
        .await?
        .len())
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        use sqlx::migrate::MigrateError as M;
        match e {
            M::Execute(e) | M::ExecuteMigration(e, _) => Error::Database(e),
            other => Error::Damaged(format!("schema: {other}")),
        }
    }
}
