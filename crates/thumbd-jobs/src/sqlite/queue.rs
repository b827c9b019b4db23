//! `SqliteJobQueue`: the embedded persistent queue.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row as _;
use tokio::sync::Notify;

use super::SqliteDb;
use crate::error::{Error, Result};
use crate::queue::{JobQueue, Lease, LeaseToken, QueueDepth};
use crate::timestamp::Timestamp;

/// The lane of image jobs, the one [`SqliteJobQueue::open`] serves.
pub const JOB_LANE: &str = "jobs";

/// How often a waiting [`lease`](JobQueue::lease) looks again for messages that became
/// visible by time (retry delays, expired leases) rather than by a push.
const POLL: Duration = Duration::from_millis(200);

/// The embedded [`JobQueue`]: rows in the `queue` table of the same SQLite file as the store.
///
/// Leases are visibility timeouts: a leased row is hidden until `visible_at`, which
/// [`heartbeat`](JobQueue::heartbeat) pushes forward. A worker that dies simply stops
/// heartbeating and the row comes back. Only one process may use a database's queue (it
/// holds a lock file), which is what lets [`open`](Self::open) hand back, at once, every lease
/// a previous, killed process held.
#[derive(Debug, Clone)]
pub struct SqliteJobQueue {
    db: SqliteDb,
    /// The rows this queue serves (`lane` column): [`JOB_LANE`] or another, such as
    /// [`WEBHOOK_LANE`](crate::WEBHOOK_LANE).
    lane: &'static str,
    visibility: Duration,
    pushed: Arc<Notify>,
    _lock: Option<Arc<File>>,
}

impl SqliteJobQueue {
    /// The queue of `db`, exclusively for this process: `lock_path` is locked (and
    /// [`Error::Locked`] returned if another process holds it), then leases left by a
    /// previous process are released.
    pub async fn open(db: SqliteDb, lock_path: &Path, visibility: Duration) -> Result<Self> {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked(lock_path.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        let queue = SqliteJobQueue {
            db,
            lane: JOB_LANE,
            visibility,
            pushed: Arc::new(Notify::new()),
            _lock: Some(Arc::new(file)),
        };
        let released = queue.release_leases().await?;
        if released > 0 {
            tracing::warn!(released, "released leases left by a previous process");
        }
        Ok(queue)
    }

    /// A queue on `db` without the process lock (tests of several consumers in one process).
    pub fn unlocked(db: SqliteDb, visibility: Duration) -> Self {
        SqliteJobQueue {
            db,
            lane: JOB_LANE,
            visibility,
            pushed: Arc::new(Notify::new()),
            _lock: None,
        }
    }

    /// The queue of another lane of the same database (sharing this one's lock): its
    /// messages are leased only from it, so its consumers and this queue's never wait on
    /// each other.
    pub fn lane(&self, lane: &'static str) -> Self {
        SqliteJobQueue {
            lane,
            pushed: Arc::new(Notify::new()),
            ..self.clone()
        }
    }

    /// Makes every leased message visible again; returns how many.
    pub async fn release_leases(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE queue SET visible_at = ?, lease_nonce = NULL \
             WHERE dead_at IS NULL AND lease_nonce IS NOT NULL",
        )
        .bind(Timestamp::now().0)
        .execute(&mut *self.db.write().await?)
        .await?;
        Ok(done.rows_affected())
    }

    /// Enqueues a body as an outside producer would, unchecked (the worker dead-letters what
    /// it cannot parse). [`JobQueue::push`] is this with a valid message.
    pub async fn push_raw(&self, payload: &[u8]) -> Result<()> {
        let now = Timestamp::now().0;
        self.db
            .execute_durable(
                "INSERT INTO queue (payload, enqueued_at, visible_at, lane) VALUES (?, ?, ?, ?)",
                |q| q.bind(payload).bind(now).bind(now).bind(self.lane),
            )
            .await?;
        self.pushed.notify_one();
        Ok(())
    }

    /// Makes a leased message visible again after `delay`, its delivery not counted and
    /// `retries` more retries counted (`retry`: 1; `put_back`: 0).
    async fn give_back(&self, lease: &Lease, delay: Duration, retries: i64) -> Result<bool> {
        let (id, nonce) = ids(lease);
        let done = sqlx::query(
            "UPDATE queue SET visible_at = ?, lease_nonce = NULL, \
                 deliveries = deliveries - 1, retries = retries + ? \
             WHERE id = ? AND lease_nonce = ? AND dead_at IS NULL",
        )
        .bind(Timestamp::now().plus(delay).0)
        .bind(retries)
        .bind(id)
        .bind(nonce)
        .execute(&mut *self.db.write().await?)
        .await?
        .rows_affected()
            == 1;
        if done && delay.is_zero() {
            self.pushed.notify_one();
        }
        Ok(done)
    }

    async fn try_lease(&self) -> Result<Option<Lease>> {
        let now = Timestamp::now();
        let nonce = rand::random::<u32>();
        let row = sqlx::query(
            "UPDATE queue SET deliveries = deliveries + 1, lease_nonce = ?, visible_at = ? \
             WHERE id = (SELECT id FROM queue WHERE lane = ? AND dead_at IS NULL \
                         AND visible_at <= ? ORDER BY visible_at, id LIMIT 1) \
             RETURNING id, payload, deliveries, retries",
        )
        .bind(i64::from(nonce))
        .bind(now.plus(self.visibility).0)
        .bind(self.lane)
        .bind(now.0)
        .fetch_optional(&mut *self.db.write().await?)
        .await?;
        row.map(|row| {
            Ok(Lease {
                payload: row.try_get("payload")?,
                deliveries: u32::try_from(row.try_get::<i64, _>("deliveries")?).unwrap_or(u32::MAX),
                retries: u32::try_from(row.try_get::<i64, _>("retries")?).unwrap_or(u32::MAX),
                token: LeaseToken {
                    id: u64::try_from(row.try_get::<i64, _>("id")?).unwrap_or(0),
                    nonce: u64::from(nonce),
                },
            })
        })
        .transpose()
    }
}

fn ids(lease: &Lease) -> (i64, i64) {
    (
        i64::try_from(lease.token.id).unwrap_or(-1),
        i64::try_from(lease.token.nonce).unwrap_or(-1),
    )
}

#[async_trait]
impl JobQueue for SqliteJobQueue {
    async fn push_bytes(&self, payload: &[u8]) -> Result<()> {
        self.push_raw(payload).await
    }

    async fn lease(&self, wait: Duration) -> Result<Option<Lease>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a push between the look and the wait
            // is not missed.
            let pushed = self.pushed.notified();
            if let Some(lease) = self.try_lease().await? {
                return Ok(Some(lease));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let nap = POLL.min(deadline - now);
            let _ = tokio::time::timeout(nap, pushed).await;
        }
    }

    async fn heartbeat(&self, lease: &Lease) -> Result<bool> {
        let (id, nonce) = ids(lease);
        let done = sqlx::query(
            "UPDATE queue SET visible_at = ? WHERE id = ? AND lease_nonce = ? AND dead_at IS NULL",
        )
        .bind(Timestamp::now().plus(self.visibility).0)
        .bind(id)
        .bind(nonce)
        .execute(&mut *self.db.write().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn ack(&self, lease: &Lease) -> Result<bool> {
        let (id, nonce) = ids(lease);
        let done =
            sqlx::query("DELETE FROM queue WHERE id = ? AND lease_nonce = ? AND dead_at IS NULL")
                .bind(id)
                .bind(nonce)
                .execute(&mut *self.db.write().await?)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn retry(&self, lease: &Lease, delay: Duration) -> Result<bool> {
        self.give_back(lease, delay, 1).await
    }

    async fn put_back(&self, lease: &Lease, delay: Duration) -> Result<bool> {
        self.give_back(lease, delay, 0).await
    }

    async fn dead_letter(&self, lease: &Lease, reason: &str) -> Result<bool> {
        let (id, nonce) = ids(lease);
        let done = sqlx::query(
            "UPDATE queue SET dead_at = ?, dead_reason = ?, lease_nonce = NULL \
             WHERE id = ? AND lease_nonce = ? AND dead_at IS NULL",
        )
        .bind(Timestamp::now().0)
        .bind(reason)
        .bind(id)
        .bind(nonce)
        .execute(&mut *self.db.write().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn depth(&self) -> Result<QueueDepth> {
        let row = sqlx::query(
            "SELECT \
               COALESCE(SUM(dead_at IS NULL AND visible_at <= ?1), 0) AS ready, \
               COALESCE(SUM(dead_at IS NULL AND visible_at > ?1 AND lease_nonce IS NOT NULL), 0) AS leased, \
               COALESCE(SUM(dead_at IS NULL AND visible_at > ?1 AND lease_nonce IS NULL), 0) AS delayed, \
               COALESCE(SUM(dead_at IS NOT NULL), 0) AS dead \
             FROM queue WHERE lane = ?2",
        )
        .bind(Timestamp::now().0)
        .bind(self.lane)
        .fetch_one(&mut *self.db.read().await?)
        .await?;
        let get = |name: &str| -> Result<u64> {
            Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
        };
        Ok(QueueDepth {
            ready: get("ready")?,
            leased: get("leased")?,
            delayed: get("delayed")?,
            dead: get("dead")?,
        })
    }
}
