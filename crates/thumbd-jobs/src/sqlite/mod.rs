//! The embedded backends on SQLite: [`SqliteMetaStore`] and [`SqliteJobQueue`] share one
//! database file in WAL mode.

mod queue;
mod store;

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _, Sqlite};
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

pub use queue::{JOB_LANE, SqliteJobQueue};
pub use store::SqliteMetaStore;

use crate::Durability;
use crate::error::Result;
use crate::schema::{self, SchemaFile};

/// The schema files, in order (append only).
const SCHEMA: &[SchemaFile] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/0001_initial.sql"),
    ),
    (
        2,
        "listing",
        include_str!("../../migrations/0002_listing.sql"),
    ),
    (
        3,
        "webhooks",
        include_str!("../../migrations/0003_webhooks.sql"),
    ),
    (
        4,
        "profiles",
        include_str!("../../migrations/0004_profiles.sql"),
    ),
];

/// One SQLite database: a single writer connection (SQLite has one writer at a time; one
/// connection avoids `SQLITE_BUSY` on lock upgrades) and a pool of readers (WAL lets them run
/// beside the writer).
///
/// The writer is a plain connection behind an async mutex, not a one-connection pool: a
/// pool pings the connection's thread when it is handed out and again when it comes back
/// (two extra round trips per statement, each waking two threads on the cores the image
/// work needs). A dropped future cannot leave it inconsistent: its worker thread runs
/// commands in order, and a dropped transaction queues its rollback first.
#[derive(Debug, Clone)]
pub struct SqliteDb {
    writer: Arc<Mutex<Option<SqliteConnection>>>,
    /// `None` for an in-memory database, whose only connection is the writer.
    reader: Option<SqlitePool>,
    durability: Durability,
    /// Commits made with `synchronous = FULL` since open ([`SqliteDb::durable_commits`]).
    durable_commits: Arc<std::sync::atomic::AtomicU64>,
    /// Migrations applied when this database was opened.
    migrated_at_open: usize,
}

/// A connection to read with: a pooled reader, or the writer of an in-memory database.
pub(crate) enum ReadConn<'a> {
    Pooled(PoolConnection<Sqlite>),
    Writer(MappedMutexGuard<'a, SqliteConnection>),
}

impl std::ops::Deref for ReadConn<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match self {
            ReadConn::Pooled(c) => c,
            ReadConn::Writer(c) => c,
        }
    }
}

impl std::ops::DerefMut for ReadConn<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            ReadConn::Pooled(c) => c,
            ReadConn::Writer(c) => c,
        }
    }
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
        let writer = options.connect().await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            // A local file has no peer to lose: pinging it only costs a thread round trip.
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        Self::start(writer, Some(reader), durability).await
    }

    /// An in-memory database (tests): one connection for both roles.
    pub async fn in_memory() -> Result<Self> {
        let writer = SqliteConnectOptions::from_str("sqlite::memory:")?
            .connect()
            .await?;
        Self::start(writer, None, Durability::Process).await
    }

    async fn start(
        writer: SqliteConnection,
        reader: Option<SqlitePool>,
        durability: Durability,
    ) -> Result<Self> {
        let db = SqliteDb {
            writer: Arc::new(Mutex::new(Some(writer))),
            reader,
            durability,
            durable_commits: Arc::default(),
            migrated_at_open: 0,
        };
        let migrated_at_open = db.migrate().await?;
        Ok(SqliteDb {
            migrated_at_open,
            ..db
        })
    }

    /// The writer connection, once any write before has finished with it.
    pub(crate) async fn write(&self) -> Result<MappedMutexGuard<'_, SqliteConnection>> {
        MutexGuard::try_map(self.writer.lock().await, Option::as_mut)
            .map_err(|_| sqlx::Error::PoolClosed.into())
    }

    /// A connection to read with; it sees every write committed before the call.
    pub(crate) async fn read(&self) -> Result<ReadConn<'_>> {
        match &self.reader {
            Some(pool) => Ok(ReadConn::Pooled(pool.acquire().await?)),
            None => Ok(ReadConn::Writer(self.write().await?)),
        }
    }

    /// How many migrations opening this database applied (0: it was up to date).
    pub fn migrated_at_open(&self) -> usize {
        self.migrated_at_open
    }

    /// Applies the migrations not yet applied; returns how many ran.
    pub async fn migrate(&self) -> Result<usize> {
        let mut conn = self.write().await?;
        schema::apply(&schema::migrator(SCHEMA), &mut *conn).await
    }

    /// Runs one write that accepts work (a queue message): with
    /// [`Durability::Full`] it is committed with `synchronous=FULL`, so it — and every commit
    /// before it — is on disk when this returns. Other writes (a worker's progress) use
    /// NORMAL: after a power loss the newest of them may be gone, which only makes a job run
    /// again.
    ///
    /// `sql` is one statement; `bind` binds its parameters.
    pub(crate) async fn execute_durable<'q>(
        &self,
        sql: &'static str,
        bind: impl FnOnce(Query<'q, Sqlite, SqliteArguments>) -> Query<'q, Sqlite, SqliteArguments>,
    ) -> Result<()> {
        let mut conn = self.write().await?;
        if self.durability == Durability::Process {
            bind(sqlx::query(sql)).execute(&mut *conn).await?;
            return Ok(());
        }
        // One command (one round trip to the connection's thread): FULL for this commit only.
        let durable = format!("PRAGMA synchronous = FULL; {sql}; PRAGMA synchronous = NORMAL");
        let result = bind(sqlx::query(AssertSqlSafe(durable)))
            .execute(&mut *conn)
            .await;
        if result.is_err() {
            // It stopped before its last statement: NORMAL again for the writes that follow.
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut *conn)
                .await?;
        }
        result?;
        self.durable_commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// How many commits were made power-safe (`synchronous = FULL`, [`Durability::Full`])
    /// since this database was opened: what tests check "durable before answered" with.
    pub fn durable_commits(&self) -> u64 {
        self.durable_commits
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Closes the readers, then the writer, waiting for their connections. Writes after
    /// this fail as on a closed pool.
    pub async fn close(&self) {
        // Readers first: the last connection to close checkpoints the WAL and removes the
        // -wal and -shm files, which only a read-write connection may do.
        if let Some(reader) = &self.reader {
            reader.close().await;
        }
        let writer = self.writer.lock().await.take();
        if let Some(writer) = writer
            && let Err(e) = writer.close().await
        {
            tracing::warn!(error = %e, "closing the SQLite writer");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn synchronous(db: &SqliteDb) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *db.write().await.unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_durable_write_leaves_the_writer_at_normal_even_when_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("t.db")).await.unwrap();
        const NORMAL: i64 = 1;
        assert_eq!(synchronous(&db).await, NORMAL);
        sqlx::query("CREATE TABLE scratch (version INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .execute(&mut *db.write().await.unwrap())
            .await
            .unwrap();
        let insert = "INSERT INTO scratch (version, name) VALUES (?, ?)";
        db.execute_durable(insert, |q| q.bind(100).bind("x"))
            .await
            .unwrap();
        assert_eq!(synchronous(&db).await, NORMAL);
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM scratch WHERE version = 100")
            .fetch_one(&mut *db.write().await.unwrap())
            .await
            .unwrap();
        assert_eq!(
            n, 1,
            "the statement between the pragmas ran, with its parameters"
        );
        // The same version again breaks the primary key: the command stops halfway.
        db.execute_durable(insert, |q| q.bind(100).bind("x"))
            .await
            .unwrap_err();
        assert_eq!(synchronous(&db).await, NORMAL);
    }
}
