//! `PgMetaStore`: jobs and thumbnails in PostgreSQL, shared by several processes (contexts,
//! uploads and idempotency keys in [`associations`]).

use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Postgres;
use sqlx::QueryBuilder;
use sqlx::Row as _;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::query::Query;
use thumbd_jobs::webhooks::sql;
use thumbd_jobs::{
    BlobKey, Error, Event, EventType, Finished, JobFailure, JobId, JobQuery, JobRecord, JobResult,
    JobStore, MetaStore, Namespace, RenditionResult, RenditionsFinished, Result, ThumbnailId,
    ThumbnailQuery, ThumbnailRecord, ThumbnailStore, Timestamp,
};

/// Connections per process: an API or worker process runs a few statements at a time, and
/// many processes share the server's `max_connections` (100 by default).
const MAX_CONNECTIONS: u32 = 8;

/// How long a statement waits for a pooled connection, which includes opening a new one: the
/// connect timeout too, so an unreachable server fails fast (→ `ServiceUnavailable`).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The columns of a [`JobRecord`]; uuid and json come back as text (no sqlx type features).
macro_rules! job_columns {
    () => {
        "id::text AS id, environment, thumbnail_id, status, source::text AS source, reply_to, \
         created_at, started_at, finished_at, attempts, result::text AS result, error_code, \
         error_message, profile"
    };
}

/// The columns of a [`ThumbnailRecord`].
macro_rules! thumbnail_columns {
    () => {
        "environment, thumbnail_id, job_id::text AS job_id, job_created_at, \
         result::text AS result, updated_at"
    };
}

mod associations;
mod notify;
mod rows;
mod webhooks;

use rows::{job_from_row, thumbnail_from_row, utf8};

pub use notify::FINISHED_CHANNEL;

/// The [`MetaStore`] on PostgreSQL, for several API and worker processes sharing one database.
///
/// Same semantics as the SQLite store: `thumbd_jobs::conformance::meta_store` checks both. Every method
/// is one statement or one transaction, safe against other processes doing the same.
///
#[derive(Debug, Clone)]
pub struct PgMetaStore {
    pool: PgPool,
    /// Connections with `synchronous_commit = off`, for writes a database crash may lose
    /// without harm (a job marked started, a job marked published): their commits skip the
    /// WAL flush, and the next durable commit flushes them anyway.
    relaxed: PgPool,
    /// Migrations applied by [`PgMetaStore::connect`].
    migrated_at_connect: usize,
}

impl PgMetaStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?…`) and applies pending
    /// migrations. A pool of 8 connections; waiting for one, or for the server, times out
    /// after 5 s.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// [`connect`](Self::connect) with options built in code (e.g. a `search_path`).
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        // No ping before each statement (sqlx's default): it is a round trip to the server
        // per statement. A connection broken meanwhile (a server restart) fails its next
        // statement — a transient error: the API answers 503, a worker retries — and sqlx
        // closes it when it comes back to the pool.
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        let relaxed = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS / 2)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_lazy_with(options.options([("synchronous_commit", "off")]));
        let mut store = PgMetaStore {
            pool,
            relaxed,
            migrated_at_connect: 0,
        };
        store.migrated_at_connect = store.migrate().await?;
        Ok(store)
    }

    /// A store on a pool configured by the caller; no migrations are run. Every write is
    /// made on that pool, with its own `synchronous_commit`.
    pub fn from_pool(pool: PgPool) -> Self {
        PgMetaStore {
            relaxed: pool.clone(),
            pool,
            migrated_at_connect: 0,
        }
    }

    /// How many migrations connecting applied (0: the schema was up to date).
    pub fn migrated_at_connect(&self) -> usize {
        self.migrated_at_connect
    }

    /// The pool, for callers that share it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations not yet applied to the first schema of the `search_path`;
    /// returns how many ran. Idempotent, and safe when several processes start at once.
    pub async fn migrate(&self) -> Result<usize> {
        crate::migrate::run(&self.pool).await
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.relaxed.close().await;
        self.pool.close().await;
    }
}

/// The insert of a new job (nothing if its id exists), for `create_job` and
/// `create_job_idempotent`.
fn insert_job(job: &JobRecord) -> Result<Query<'_, Postgres, PgArguments>> {
    Ok(sqlx::query(
        "INSERT INTO jobs (id, environment, thumbnail_id, status, source, reply_to, \
         created_at, attempts, published, profile) \
         VALUES ($1::uuid, $2, $3, $4, $5::json, $6, $7, 0, false, $8) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(job.id.to_string())
    .bind(job.namespace().key())
    .bind(job.thumbnail_id.as_str().as_bytes())
    .bind(job.status.as_str())
    .bind(serde_json::to_string(&job.source)?)
    .bind(job.reply_to.as_deref().map(str::as_bytes))
    .bind(job.created_at.0)
    .bind(job.profile.as_deref()))
}

#[async_trait]
impl JobStore for PgMetaStore {
    async fn create_job(&self, job: &JobRecord) -> Result<bool> {
        let done = insert_job(job)?.execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn mark_published(&self, id: JobId) -> Result<()> {
        // Lost in a database crash, the flag costs one duplicate message (the sweeper's).
        sqlx::query("UPDATE jobs SET published = true WHERE id = $1::uuid")
            .bind(id.to_string())
            .execute(&self.relaxed)
            .await?;
        Ok(())
    }

    async fn mark_published_many(&self, ids: &[JobId]) -> Result<()> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        sqlx::query("UPDATE jobs SET published = true WHERE id = ANY($1::text[]::uuid[])")
            .bind(ids)
            .execute(&self.relaxed)
            .await?;
        Ok(())
    }

    async fn unpublished_jobs(&self, before: Timestamp, limit: u32) -> Result<Vec<JobRecord>> {
        sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE NOT published AND status IN ('queued', 'processing') AND created_at < $1 \
             ORDER BY created_at LIMIT $2"
        ))
        .bind(before.0)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(job_from_row)
        .collect()
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = $1::uuid"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(job_from_row)
        .transpose()
    }

    async fn start_job(&self, id: JobId, now: Timestamp) -> Result<Option<JobRecord>> {
        let row = sqlx::query(concat!(
            "UPDATE jobs SET status = 'processing', started_at = $1, attempts = attempts + 1 \
             WHERE id = $2::uuid AND status IN ('queued', 'processing') RETURNING ",
            job_columns!()
        ))
        .bind(now.0)
        .bind(id.to_string())
        // Lost in a database crash, the job is `queued` again with one attempt less, and its
        // message (not yet acked) runs it again.
        .fetch_optional(&self.relaxed)
        .await?;
        match row {
            Some(row) => job_from_row(&row).map(Some),
            // Finished or unknown; a finished job never changes again, so a second read is
            // as good as one in the same statement.
            None => self.job(id).await,
        }
    }

    async fn requeue_job(&self, id: JobId) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'queued' WHERE id = $1::uuid AND status = 'processing'",
        )
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn finish_succeeded(
        &self,
        id: JobId,
        result: &JobResult,
        now: Timestamp,
    ) -> Result<Finished> {
        // One statement, one round trip: the steps are a server-side function
        // (`thumbd_finish_succeeded`), and the `job.succeeded` deliveries, if it applied, are
        // written beside it by a data-modifying CTE, in the same implicit transaction.
        let mut query = QueryBuilder::<Postgres>::new(
            "WITH f AS (SELECT applied, is_current, orphaned FROM thumbd_finish_succeeded(",
        );
        query
            .push_bind(id.to_string())
            .push("::uuid, ")
            .push_bind(now.0)
            .push(", ")
            .push_bind(serde_json::to_string(result)?)
            .push("::json, ")
            .push_bind(result.blob_key.as_str().to_owned())
            .push(", ")
            .push_bind(FINISHED_CHANNEL)
            .push(")), announced AS (");
        let event = Event::job(EventType::JobSucceeded, id, now);
        sql::push_job_event(&mut query, &event, "::uuid", " AND (SELECT applied FROM f)");
        query.push(") SELECT applied, is_current, orphaned FROM f");
        let row = query
            .build()
            .fetch_one(&self.pool)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.code().as_deref() == Some("P0002") => {
                    Error::Damaged(format!("job {id} vanished before it finished"))
                }
                _ => e.into(),
            })?;
        let orphaned: Vec<String> = row.try_get("orphaned")?;
        Ok(Finished {
            applied: row.try_get("applied")?,
            current: row.try_get("is_current")?,
            orphaned: orphaned
                .iter()
                .map(|k| BlobKey::parse(k))
                .collect::<Result<_>>()?,
        })
    }

    async fn finish_renditions(
        &self,
        id: JobId,
        made: &[RenditionResult],
        now: Timestamp,
    ) -> Result<RenditionsFinished> {
        let mut tx = self.pool.begin().await?;
        // The job's row first, then the thumbnail's: the order thumbd_finish_succeeded locks
        // them in, so a replace finishing meanwhile waits or is waited for, never deadlocks.
        let Some(row) = sqlx::query(
            "SELECT environment, thumbnail_id, result::text AS result FROM jobs \
             WHERE id = $1::uuid AND status = 'succeeded' FOR UPDATE",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(RenditionsFinished::default());
        };
        let environment: String = row.try_get("environment")?;
        let thumbnail_id: Vec<u8> = row.try_get("thumbnail_id")?;
        let mut result: JobResult = serde_json::from_str(row.try_get("result")?)?;
        let Some(freed) = result.apply_made(made) else {
            return Ok(RenditionsFinished::default());
        };
        let result_json = serde_json::to_string(&result)?;
        sqlx::query("UPDATE jobs SET result = $1::json WHERE id = $2::uuid")
            .bind(&result_json)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let current = sqlx::query(
            "UPDATE thumbnails SET result = $1::json \
             WHERE environment = $2 AND thumbnail_id = $3 AND job_id = $4::uuid",
        )
        .bind(&result_json)
        .bind(&environment)
        .bind(&thumbnail_id)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let namespace = Namespace::from_key(&environment)?;
        let ready = Event::job(EventType::RenditionReady, id, now);
        webhooks::write_event(&mut tx, &namespace, &ready).await?;
        tx.commit().await?;
        Ok(RenditionsFinished {
            applied: true,
            current,
            freed,
        })
    }

    async fn finish_failed(&self, id: JobId, failure: &JobFailure, now: Timestamp) -> Result<bool> {
        // text cannot hold NUL; a message is for people, and a job that cannot record its
        // failure would be retried forever.
        let message = failure.message.replace('\0', "\u{FFFD}");
        // One statement: the update, its `job.failed` deliveries if it applied, the NOTIFY.
        let mut query = QueryBuilder::<Postgres>::new(
            "WITH done AS (UPDATE jobs SET status = 'failed', finished_at = ",
        );
        query
            .push_bind(now.0)
            .push(", error_code = ")
            .push_bind(failure.code.as_str())
            .push(", error_message = ")
            .push_bind(message)
            .push(" WHERE id = ")
            .push_bind(id.to_string())
            .push(
                "::uuid AND status IN ('queued', 'processing') RETURNING id::text AS id), \
                 announced AS (",
            );
        let event = Event::job(EventType::JobFailed, id, now);
        sql::push_job_event(
            &mut query,
            &event,
            "::uuid",
            " AND EXISTS (SELECT 1 FROM done)",
        );
        query
            .push(") SELECT pg_notify(")
            .push_bind(FINISHED_CHANNEL)
            .push(", id) FROM done");
        let done = query.build().fetch_all(&self.pool).await?;
        Ok(done.len() == 1)
    }

    async fn purge_finished_jobs(&self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM jobs j WHERE finished_at IS NOT NULL AND finished_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM thumbnails t WHERE t.job_id = j.id)",
        )
        .bind(before.0)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn list_jobs(&self, namespace: &Namespace, query: &JobQuery) -> Result<Vec<JobRecord>> {
        let mut sql = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE environment = "
        ));
        sql.push_bind(namespace.key());
        query.push_sql(&mut sql, "::uuid");
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(job_from_row)
            .collect()
    }
}

#[async_trait]
impl ThumbnailStore for PgMetaStore {
    async fn thumbnail(
        &self,
        namespace: &Namespace,
        id: &ThumbnailId,
    ) -> Result<Option<ThumbnailRecord>> {
        sqlx::query(concat!(
            "SELECT ",
            thumbnail_columns!(),
            " FROM thumbnails WHERE environment = $1 AND thumbnail_id = $2"
        ))
        .bind(namespace.key())
        .bind(id.as_str().as_bytes())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(thumbnail_from_row)
        .transpose()
    }

    async fn delete_thumbnail(
        &self,
        namespace: &Namespace,
        id: &ThumbnailId,
    ) -> Result<Option<ThumbnailRecord>> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(concat!(
            "DELETE FROM thumbnails WHERE environment = $1 AND thumbnail_id = $2 RETURNING ",
            thumbnail_columns!()
        ))
        .bind(namespace.key())
        .bind(id.as_str().as_bytes())
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(thumbnail_from_row)
        .transpose()?;
        if deleted.is_some() {
            webhooks::write_event(
                &mut tx,
                namespace,
                &Event::thumbnail_deleted(namespace, id, Timestamp::now()),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn list_thumbnails(
        &self,
        namespace: &Namespace,
        query: &ThumbnailQuery,
    ) -> Result<Vec<ThumbnailRecord>> {
        let mut sql = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            thumbnail_columns!(),
            " FROM thumbnails WHERE environment = "
        ));
        sql.push_bind(namespace.key());
        // bytea compares by bytes: the UTF-8 order of the ids.
        query.push_sql(&mut sql, |id: &str| id.as_bytes().to_vec());
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(thumbnail_from_row)
            .collect()
    }
}

#[async_trait]
impl MetaStore for PgMetaStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
