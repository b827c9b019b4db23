//! `SqliteMetaStore`: jobs and thumbnails in SQLite (contexts, uploads and idempotency keys
//! in [`associations`]).

mod associations;
mod webhooks;

use async_trait::async_trait;
use sqlx::Connection as _;
use sqlx::QueryBuilder;
use sqlx::Row as _;
use sqlx::Sqlite;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};

use super::SqliteDb;
use crate::error::{Error, Result};
use crate::ids::{JobId, Namespace, ThumbnailId};
use crate::job::{
    JobFailure, JobRecord, JobResult, JobSource, JobStatus, RenditionResult, ThumbnailRecord,
};
use crate::listing::{JobQuery, ThumbnailQuery};
use crate::store::{Finished, JobStore, MetaStore, RenditionsFinished, ThumbnailStore};
use crate::timestamp::Timestamp;
use crate::webhooks::{Event, EventType};

/// The embedded [`MetaStore`].
#[derive(Debug, Clone)]
pub struct SqliteMetaStore {
    db: SqliteDb,
}

impl SqliteMetaStore {
    /// A store on an open database.
    pub fn new(db: SqliteDb) -> Self {
        SqliteMetaStore { db }
    }
}

fn job_from_row(row: &SqliteRow) -> Result<JobRecord> {
    let damaged = |e: Error| Error::Damaged(format!("job row: {e}"));
    let result: Option<String> = row.try_get("result")?;
    let error_code: Option<String> = row.try_get("error_code")?;
    let namespace = Namespace::from_key(row.try_get("environment")?).map_err(damaged)?;
    Ok(JobRecord {
        id: JobId::parse(row.try_get("id")?).map_err(damaged)?,
        tenant: namespace.tenant,
        environment: namespace.environment,
        thumbnail_id: ThumbnailId::parse(row.try_get("thumbnail_id")?).map_err(damaged)?,
        status: JobStatus::parse(row.try_get("status")?)?,
        source: serde_json::from_str::<JobSource>(row.try_get("source")?)?,
        reply_to: row.try_get("reply_to")?,
        profile: row.try_get("profile")?,
        created_at: Timestamp(row.try_get("created_at")?),
        started_at: row.try_get::<Option<i64>, _>("started_at")?.map(Timestamp),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(Timestamp),
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        result: result.map(|r| serde_json::from_str(&r)).transpose()?,
        error: match error_code {
            Some(code) => Some(JobFailure {
                code: code
                    .parse()
                    .map_err(|e| Error::Damaged(format!("job row: {e}")))?,
                message: row
                    .try_get::<Option<String>, _>("error_message")?
                    .unwrap_or_default(),
            }),
            None => None,
        },
    })
}

/// The insert of a new job (nothing if its id exists), for `create_job` and
/// `create_job_idempotent`.
fn insert_job(job: &JobRecord) -> Result<Query<'_, Sqlite, SqliteArguments>> {
    Ok(sqlx::query(
        "INSERT INTO jobs (id, environment, thumbnail_id, status, source, reply_to, created_at, \
         attempts, published, profile) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(job.id.to_string())
    .bind(job.namespace().key())
    .bind(job.thumbnail_id.as_str())
    .bind(job.status.as_str())
    .bind(serde_json::to_string(&job.source)?)
    .bind(job.reply_to.as_deref())
    .bind(job.created_at.0)
    .bind(job.profile.as_deref()))
}

fn thumbnail_from_row(row: &SqliteRow) -> Result<ThumbnailRecord> {
    let damaged = |e: Error| Error::Damaged(format!("thumbnail row: {e}"));
    let namespace = Namespace::from_key(row.try_get("environment")?).map_err(damaged)?;
    Ok(ThumbnailRecord {
        tenant: namespace.tenant,
        environment: namespace.environment,
        thumbnail_id: ThumbnailId::parse(row.try_get("thumbnail_id")?).map_err(damaged)?,
        job_id: JobId::parse(row.try_get("job_id")?).map_err(damaged)?,
        job_created_at: Timestamp(row.try_get("job_created_at")?),
        result: serde_json::from_str(row.try_get("result")?)?,
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

const MARK_PUBLISHED: &str = "UPDATE jobs SET published = 1 WHERE id = ?";

#[async_trait]
impl JobStore for SqliteMetaStore {
    async fn create_job(&self, job: &JobRecord) -> Result<bool> {
        let query = insert_job(job)?;
        // Not `execute_durable`: the API pushes the job's queue message right after, and that
        // FULL commit syncs the (sequential) WAL, this insert included. One fsync per accept.
        let done = query.execute(&mut *self.db.write().await?).await?;
        Ok(done.rows_affected() == 1)
    }

    async fn mark_published(&self, id: JobId) -> Result<()> {
        sqlx::query(MARK_PUBLISHED)
            .bind(id.to_string())
            .execute(&mut *self.db.write().await?)
            .await?;
        Ok(())
    }

    async fn make_durable(&self, id: JobId) -> Result<()> {
        // The worker's commits use NORMAL; this one syncs the WAL (Durability::Full), which
        // is sequential, so the job's finish before it is on disk too. It must write a frame
        // to have anything to sync: it bumps a sequence no other commit touches (`durable_marks`).
        self.db
            .execute_durable(
                "UPDATE durable_marks SET seq = seq + 1, job_id = ? WHERE id = 1",
                |q| q.bind(id.to_string()),
            )
            .await
    }

    async fn mark_published_many(&self, ids: &[JobId]) -> Result<()> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        sqlx::query("UPDATE jobs SET published = 1 WHERE id IN (SELECT value FROM json_each(?))")
            .bind(serde_json::to_string(&ids)?)
            .execute(&mut *self.db.write().await?)
            .await?;
        Ok(())
    }

    async fn unpublished_jobs(&self, before: Timestamp, limit: u32) -> Result<Vec<JobRecord>> {
        sqlx::query(
            "SELECT * FROM jobs WHERE published = 0 AND status IN ('queued', 'processing') AND created_at < ? \
             ORDER BY created_at LIMIT ?",
        )
        .bind(before.0)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.db.read().await?)
        .await?
        .iter()
        .map(job_from_row)
        .collect()
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        sqlx::query("SELECT * FROM jobs WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&mut *self.db.read().await?)
            .await?
            .as_ref()
            .map(job_from_row)
            .transpose()
    }

    async fn start_job(&self, id: JobId, now: Timestamp) -> Result<Option<JobRecord>> {
        let row = sqlx::query(
            "UPDATE jobs SET status = 'processing', started_at = ?, attempts = attempts + 1 \
             WHERE id = ? AND status IN ('queued', 'processing') RETURNING *",
        )
        .bind(now.0)
        .bind(id.to_string())
        .fetch_optional(&mut *self.db.write().await?)
        .await?;
        match row {
            Some(row) => job_from_row(&row).map(Some),
            // Finished or unknown: read it through the writer so we see our own commits.
            None => sqlx::query("SELECT * FROM jobs WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(&mut *self.db.write().await?)
                .await?
                .as_ref()
                .map(job_from_row)
                .transpose(),
        }
    }

    async fn requeue_job(&self, id: JobId) -> Result<()> {
        sqlx::query("UPDATE jobs SET status = 'queued' WHERE id = ? AND status = 'processing'")
            .bind(id.to_string())
            .execute(&mut *self.db.write().await?)
            .await?;
        Ok(())
    }

    async fn finish_succeeded(
        &self,
        id: JobId,
        result: &JobResult,
        now: Timestamp,
    ) -> Result<Finished> {
        let mut conn = self.db.write().await?;
        let mut tx = conn.begin().await?;
        let job = sqlx::query(
            "SELECT environment, thumbnail_id, status, created_at FROM jobs WHERE id = ?",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(job) = job else {
            return Err(Error::Damaged(format!(
                "job {id} vanished before it finished"
            )));
        };
        if JobStatus::parse(job.try_get("status")?)?.is_finished() {
            return Ok(Finished::default());
        }
        let environment: String = job.try_get("environment")?;
        let thumbnail_id: String = job.try_get("thumbnail_id")?;
        let created_at: i64 = job.try_get("created_at")?;
        let result_json = serde_json::to_string(result)?;
        let namespace = Namespace::from_key(&environment)?;
        let succeeded = Event::job(EventType::JobSucceeded, id, now);
        sqlx::query(
            "UPDATE jobs SET status = 'succeeded', finished_at = ?, result = ?, \
             error_code = NULL, error_message = NULL WHERE id = ?",
        )
        .bind(now.0)
        .bind(&result_json)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;

        let existing = sqlx::query(
            "SELECT job_id, job_created_at, result FROM thumbnails \
             WHERE environment = ? AND thumbnail_id = ?",
        )
        .bind(&environment)
        .bind(&thumbnail_id)
        .fetch_optional(&mut *tx)
        .await?;
        let mut finished = Finished {
            applied: true,
            current: true,
            orphaned: Vec::new(),
        };
        if let Some(existing) = existing {
            let their: (i64, String) = (
                existing.try_get("job_created_at")?,
                existing.try_get("job_id")?,
            );
            let old: JobResult = serde_json::from_str(existing.try_get("result")?)?;
            if their > (created_at, id.to_string()) {
                // A job accepted later already replaced it: ours is not served.
                finished.current = false;
                finished.orphaned = result.blob_keys();
                webhooks::write_event(&mut tx, &namespace, &succeeded).await?;
                tx.commit().await?;
                return Ok(finished);
            }
            finished.orphaned = old.replaced_by(result);
        }
        sqlx::query(
            "INSERT INTO thumbnails (environment, thumbnail_id, job_id, job_created_at, result, \
             blob_key, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (environment, thumbnail_id) DO UPDATE SET job_id = excluded.job_id, \
             job_created_at = excluded.job_created_at, result = excluded.result, \
             blob_key = excluded.blob_key, updated_at = excluded.updated_at",
        )
        .bind(&environment)
        .bind(&thumbnail_id)
        .bind(id.to_string())
        .bind(created_at)
        .bind(&result_json)
        .bind(result.blob_key.as_str())
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        webhooks::write_event(&mut tx, &namespace, &succeeded).await?;
        tx.commit().await?;
        Ok(finished)
    }

    async fn finish_renditions(
        &self,
        id: JobId,
        made: &[RenditionResult],
        now: Timestamp,
    ) -> Result<RenditionsFinished> {
        let mut conn = self.db.write().await?;
        let mut tx = conn.begin().await?;
        let Some(row) = sqlx::query(
            "SELECT environment, thumbnail_id, result FROM jobs \
             WHERE id = ? AND status = 'succeeded'",
        )
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(RenditionsFinished::default());
        };
        let environment: String = row.try_get("environment")?;
        let thumbnail_id: String = row.try_get("thumbnail_id")?;
        let mut result: JobResult = serde_json::from_str(row.try_get("result")?)?;
        let Some(freed) = result.apply_made(made) else {
            return Ok(RenditionsFinished::default());
        };
        let result_json = serde_json::to_string(&result)?;
        sqlx::query("UPDATE jobs SET result = ? WHERE id = ?")
            .bind(&result_json)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let current = sqlx::query(
            "UPDATE thumbnails SET result = ? \
             WHERE environment = ? AND thumbnail_id = ? AND job_id = ?",
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
        let mut conn = self.db.write().await?;
        let mut tx = conn.begin().await?;
        let environment: Option<String> = sqlx::query_scalar(
            "UPDATE jobs SET status = 'failed', finished_at = ?, error_code = ?, error_message = ? \
             WHERE id = ? AND status IN ('queued', 'processing') RETURNING environment",
        )
        .bind(now.0)
        .bind(failure.code.as_str())
        .bind(&failure.message)
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(environment) = environment else {
            return Ok(false);
        };
        let failed = Event::job(EventType::JobFailed, id, now);
        webhooks::write_event(&mut tx, &Namespace::from_key(&environment)?, &failed).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn purge_finished_jobs(&self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? \
             AND id NOT IN (SELECT job_id FROM thumbnails)",
        )
        .bind(before.0)
        .execute(&mut *self.db.write().await?)
        .await?;
        Ok(done.rows_affected())
    }

    async fn list_jobs(&self, namespace: &Namespace, query: &JobQuery) -> Result<Vec<JobRecord>> {
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT * FROM jobs WHERE environment = ");
        sql.push_bind(namespace.key());
        query.push_sql(&mut sql, "");
        sql.build()
            .fetch_all(&mut *self.db.read().await?)
            .await?
            .iter()
            .map(job_from_row)
            .collect()
    }
}

#[async_trait]
impl ThumbnailStore for SqliteMetaStore {
    async fn thumbnail(
        &self,
        namespace: &Namespace,
        id: &ThumbnailId,
    ) -> Result<Option<ThumbnailRecord>> {
        sqlx::query("SELECT * FROM thumbnails WHERE environment = ? AND thumbnail_id = ?")
            .bind(namespace.key())
            .bind(id.as_str())
            .fetch_optional(&mut *self.db.read().await?)
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
        let mut conn = self.db.write().await?;
        let mut tx = conn.begin().await?;
        let row = sqlx::query(
            "DELETE FROM thumbnails WHERE environment = ? AND thumbnail_id = ? RETURNING *",
        )
        .bind(namespace.key())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let deleted = row.as_ref().map(thumbnail_from_row).transpose()?;
        if deleted.is_some() {
            let event = Event::thumbnail_deleted(namespace, id, Timestamp::now());
            webhooks::write_event(&mut tx, namespace, &event).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn list_thumbnails(
        &self,
        namespace: &Namespace,
        query: &ThumbnailQuery,
    ) -> Result<Vec<ThumbnailRecord>> {
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT * FROM thumbnails WHERE environment = ");
        sql.push_bind(namespace.key());
        // TEXT compares by its UTF-8 bytes (BINARY collation): the key's order.
        query.push_sql(&mut sql, str::to_owned);
        sql.build()
            .fetch_all(&mut *self.db.read().await?)
            .await?
            .iter()
            .map(thumbnail_from_row)
            .collect()
    }
}

#[async_trait]
impl MetaStore for SqliteMetaStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&mut *self.db.read().await?)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Environment, Tenant};
    use crate::job::JobMessage;

    /// A commit that writes no WAL frame syncs nothing: `make_durable` must always write one,
    /// also for a job marked published long before (the usual case).
    #[tokio::test]
    async fn make_durable_always_writes_a_frame_to_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteMetaStore::new(SqliteDb::open(&path).await.unwrap());
        let message = JobMessage {
            job_id: Some(JobId::new()),
            tenant: Tenant::default(),
            environment: Environment::Production,
            thumbnail_id: ThumbnailId::parse("durable").unwrap(),
            source: JobSource::Url {
                url: "https://example.invalid/x.png".into(),
            },
            reply_to: None,
            profile: None,
        };
        let job = JobRecord::queued(message.job_id.unwrap(), &message, Timestamp::now());
        store.create_job(&job).await.unwrap();
        store.mark_published(job.id).await.unwrap();
        let wal = |_: ()| {
            std::fs::metadata(dir.path().join("t.db-wal"))
                .map(|m| m.len())
                .unwrap_or(0)
        };
        for _ in 0..3 {
            let before = wal(());
            store.make_durable(job.id).await.unwrap();
            assert!(
                wal(()) > before,
                "a frame was written ({before} bytes before)"
            );
        }
        assert_eq!(store.db.durable_commits(), 3, "each committed with FULL");
    }
}
