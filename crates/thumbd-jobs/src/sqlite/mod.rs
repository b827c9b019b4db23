//! The embedded backends on SQLite: [`SqliteMetaStore`] and [`SqliteJobQueue`] share one
//! database file in WAL mode.

mod queue;
mod store;

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use queue::SqliteJobQueue;
pub use store::SqliteMetaStore;

use crate::Durability;
use crate::error::Result;

/// The schema, in order. Each runs once, in a transaction, recorded in `thumbd_migrations`.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (
        2,
        "published",
        include_str!("../../migrations/0002_published.sql"),
    ),
    (
        3,
        "idempotency_purge",
        include_str!("../../migrations/0003_idempotency_purge.sql"),
    ),
];

/// One SQLite database: a single writer connection (SQLite has one writer at a time; one
/// connection avoids `SQLITE_BUSY` on lock upgrades) and a pool of readers (WAL lets them run
/// beside the writer).
#[derive(Debug, Clone)]
pub struct SqliteDb {
    pub(crate) writer: SqlitePool,
    pub(crate) reader: SqlitePool,
    durability: Durability,
}

impl SqliteDb {
    /// Opens (creating if needed) the database at `path` and applies pending migrations,
    /// with [`Durability::Full`].
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, Durability::Full).await
    }

    /// [`open`](Self::open) with a chosen durability.
    pub async fn open_with(path: &Path, durability: Durability) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives the process being killed, not the machine.
            // With Durability::Full, the commits that accept a job are made with FULL
            // (see `execute_durable`); since the WAL is sequential, that also makes every
            // earlier commit durable.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        Self::connect(options, durability).await
    }

    /// An in-memory database (tests): one shared connection for both roles.
    pub async fn in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        let db = SqliteDb {
            writer: pool.clone(),
            reader: pool,
            durability: Durability::Process,
        };
        db.migrate().await?;
        Ok(db)
    }

    async fn connect(options: SqliteConnectOptions, durability: Durability) -> Result<Self> {
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let db = SqliteDb {
            writer,
            reader: SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.read_only(true))
                .await?,
            durability,
        };
        db.migrate().await?;
        Ok(db)
    }

    /// Applies the migrations not yet applied; returns how many ran.
    pub async fn migrate(&self) -> Result<usize> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS thumbd_migrations \
             (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        )
        .execute(&self.writer)
        .await?;
        let mut ran = 0;
        for &(version, name, sql) in MIGRATIONS {
            let mut tx = self.writer.begin().await?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM thumbd_migrations WHERE version = ?")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                continue;
            }
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO thumbd_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            )
            .bind(version)
            .bind(name)
            .bind(crate::Timestamp::now().0)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            ran += 1;
        }
        Ok(ran)
    }

    /// Runs one write that accepts work (a queue message): with
    /// [`Durability::Full`] it is committed with `synchronous=FULL`, so it — and every commit
    /// before it — is on disk when this returns. Other writes (a worker's progress) use
    /// NORMAL: after a power loss the newest of them may be gone, which only makes a job run
    /// again.
    pub(crate) async fn execute_durable<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<sqlx::sqlite::SqliteQueryResult> {
        let mut conn = self.writer.acquire().await?;
        if self.durability == Durability::Process {
            return Ok(query.execute(&mut *conn).await?);
        }
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await?;
        let result = query.execute(&mut *conn).await;
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        Ok(result?)
    }

    /// Closes both pools, waiting for their connections.
    pub async fn close(&self) {
        // Readers first: the last connection to close checkpoints the WAL and removes the
        // -wal and -shm files, which only a read-write connection may do.
        self.reader.close().await;
        self.writer.close().await;
    }
}
