//! Contexts, uploads and idempotency keys in SQLite.
//!
//! Every write runs on the one writer connection, so two transactions never interleave: the
//! "is any other context still referencing this thumbnail?" test and the delete it decides
//! cannot race with another context change, and an idempotency key is read and claimed
//! without another request slipping in between.

use sqlx::Connection as _;
use sqlx::Row as _;
use sqlx::sqlite::SqliteRow;

use async_trait::async_trait;

use super::{SqliteMetaStore, thumbnail_from_row};
use crate::associations::{Claim, ContextChange, ContextRecord, IdempotencyKey, UploadRecord};
use crate::error::{Error, Result};
use crate::ids::{ContextId, Environment, JobId, Namespace, ThumbnailId, UploadTicket};
use crate::job::{JobRecord, ThumbnailRecord};
use crate::rows::upload_from_row;
use crate::store::AssociationStore;
use crate::timestamp::Timestamp;
use crate::webhooks::Event;

fn context_from_row(row: &SqliteRow) -> Result<ContextRecord> {
    let damaged = |e: Error| Error::Damaged(format!("context row: {e}"));
    let namespace = Namespace::from_key(row.try_get("environment")?).map_err(damaged)?;
    Ok(ContextRecord {
        tenant: namespace.tenant,
        environment: namespace.environment,
        context_id: ContextId::parse(row.try_get("context_id")?).map_err(damaged)?,
        thumbnail_id: ThumbnailId::parse(row.try_get("thumbnail_id")?).map_err(damaged)?,
        body: row.try_get("body")?,
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

/// Deletes thumbnail `id` if no context references it any more; returns what was deleted.
async fn delete_unreferenced(
    tx: &mut sqlx::SqliteConnection,
    namespace: &Namespace,
    id: &ThumbnailId,
) -> Result<Option<ThumbnailRecord>> {
    let deleted = sqlx::query(
        "DELETE FROM thumbnails WHERE environment = ?1 AND thumbnail_id = ?2 AND NOT EXISTS \
         (SELECT 1 FROM contexts WHERE environment = ?1 AND thumbnail_id = ?2) RETURNING *",
    )
    .bind(namespace.key())
    .bind(id.as_str())
    .fetch_optional(&mut *tx)
    .await?
    .as_ref()
    .map(thumbnail_from_row)
    .transpose()?;
    if deleted.is_some() {
        let event = Event::thumbnail_deleted(namespace, id, Timestamp::now());
        super::webhooks::write_event(tx, namespace, &event).await?;
    }
    Ok(deleted)
}

#[async_trait]
impl AssociationStore for SqliteMetaStore {
    async fn create_job_idempotent(
        &self,
        job: &JobRecord,
        key: &IdempotencyKey,
        fresh_after: Timestamp,
    ) -> Result<Claim> {
        let db = &self.db;
        let mut conn = db.write().await?;
        let mut tx = conn.begin().await?;
        let existing = sqlx::query(
            "SELECT job_id, created_at FROM idempotency_keys \
         WHERE client = ? AND environment = ? AND key = ?",
        )
        .bind(&key.client)
        .bind(key.namespace().key())
        .bind(&key.key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            let created_at: i64 = row.try_get("created_at")?;
            if created_at > fresh_after.0 {
                let id = JobId::parse(row.try_get("job_id")?)
                    .map_err(|e| Error::Damaged(format!("idempotency key row: {e}")))?;
                return Ok(Claim::Existing(id));
            }
        }
        super::insert_job(job)?.execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO idempotency_keys (client, environment, key, job_id, created_at) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (client, environment, key) \
         DO UPDATE SET job_id = excluded.job_id, created_at = excluded.created_at",
        )
        .bind(&key.client)
        .bind(key.namespace().key())
        .bind(&key.key)
        .bind(job.id.to_string())
        .bind(job.created_at.0)
        .execute(&mut *tx)
        .await?;
        // Plain commit, as in `create_job`: the queue push that follows syncs the WAL.
        tx.commit().await?;
        Ok(Claim::Created)
    }

    async fn idempotent_job(
        &self,
        key: &IdempotencyKey,
        fresh_after: Timestamp,
    ) -> Result<Option<JobId>> {
        let db = &self.db;
        let id: Option<String> = sqlx::query_scalar(
            "SELECT job_id FROM idempotency_keys \
         WHERE client = ? AND environment = ? AND key = ? AND created_at > ?",
        )
        .bind(&key.client)
        .bind(key.namespace().key())
        .bind(&key.key)
        .bind(fresh_after.0)
        .fetch_optional(&mut *db.read().await?)
        .await?;
        id.map(|id| {
            JobId::parse(&id).map_err(|e| Error::Damaged(format!("idempotency key row: {e}")))
        })
        .transpose()
    }

    async fn release_idempotency_key(&self, key: &IdempotencyKey, job: JobId) -> Result<()> {
        let db = &self.db;
        sqlx::query(
            "DELETE FROM idempotency_keys \
         WHERE client = ? AND environment = ? AND key = ? AND job_id = ?",
        )
        .bind(&key.client)
        .bind(key.namespace().key())
        .bind(&key.key)
        .bind(job.to_string())
        .execute(&mut *db.write().await?)
        .await?;
        Ok(())
    }

    async fn purge_idempotency_keys(&self, before: Timestamp) -> Result<u64> {
        let db = &self.db;
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < ?")
            .bind(before.0)
            .execute(&mut *db.write().await?)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_upload(&self, upload: &UploadRecord) -> Result<()> {
        let db = &self.db;
        let bytes = i64::try_from(upload.bytes)
            .map_err(|_| Error::invalid("upload", "too large to record"))?;
        sqlx::query(
            "INSERT INTO uploads (ticket, tenant, environment, blob_key, content_type, bytes, \
         created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(upload.ticket.as_str())
        .bind(upload.tenant.as_str())
        .bind(upload.environment.map(Environment::as_str))
        .bind(upload.blob_key.as_str())
        .bind(&upload.content_type)
        .bind(bytes)
        .bind(upload.created_at.0)
        .bind(upload.expires_at.0)
        .execute(&mut *db.write().await?)
        .await?;
        Ok(())
    }

    async fn upload(&self, ticket: &UploadTicket, now: Timestamp) -> Result<Option<UploadRecord>> {
        let db = &self.db;
        sqlx::query("SELECT * FROM uploads WHERE ticket = ? AND expires_at > ?")
            .bind(ticket.as_str())
            .bind(now.0)
            .fetch_optional(&mut *db.read().await?)
            .await?
            .as_ref()
            .map(upload_from_row)
            .transpose()
    }

    async fn purge_expired_uploads(&self, now: Timestamp, limit: u32) -> Result<Vec<UploadRecord>> {
        let db = &self.db;
        sqlx::query(
            "DELETE FROM uploads WHERE ticket IN \
         (SELECT ticket FROM uploads WHERE expires_at <= ? ORDER BY expires_at LIMIT ?) \
         RETURNING *",
        )
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(&mut *db.write().await?)
        .await?
        .iter()
        .map(upload_from_row)
        .collect()
    }

    async fn put_context(&self, context: &ContextRecord) -> Result<ContextChange> {
        let db = &self.db;
        let namespace = context.namespace();
        let env = namespace.key();
        let mut conn = db.write().await?;
        let mut tx = conn.begin().await?;
        let previous =
            sqlx::query("SELECT * FROM contexts WHERE environment = ? AND context_id = ?")
                .bind(&env)
                .bind(context.context_id.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .as_ref()
                .map(context_from_row)
                .transpose()?;
        // A replacement keeps the first created_at.
        sqlx::query(
            "INSERT INTO contexts (environment, context_id, thumbnail_id, body, created_at, \
         updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (environment, context_id) \
         DO UPDATE SET thumbnail_id = excluded.thumbnail_id, body = excluded.body, \
         updated_at = excluded.updated_at",
        )
        .bind(&env)
        .bind(context.context_id.as_str())
        .bind(context.thumbnail_id.as_str())
        .bind(&context.body)
        .bind(context.created_at.0)
        .bind(context.updated_at.0)
        .execute(&mut *tx)
        .await?;
        let deleted_thumbnail = match &previous {
            Some(p) if p.thumbnail_id != context.thumbnail_id => {
                delete_unreferenced(&mut tx, &namespace, &p.thumbnail_id).await?
            }
            _ => None,
        };
        tx.commit().await?;
        Ok(ContextChange {
            previous,
            deleted_thumbnail,
        })
    }

    async fn context(
        &self,
        namespace: &Namespace,
        id: &ContextId,
    ) -> Result<Option<ContextRecord>> {
        let db = &self.db;
        sqlx::query("SELECT * FROM contexts WHERE environment = ? AND context_id = ?")
            .bind(namespace.key())
            .bind(id.as_str())
            .fetch_optional(&mut *db.read().await?)
            .await?
            .as_ref()
            .map(context_from_row)
            .transpose()
    }

    async fn delete_context(
        &self,
        namespace: &Namespace,
        id: &ContextId,
    ) -> Result<Option<ContextChange>> {
        let db = &self.db;
        let mut conn = db.write().await?;
        let mut tx = conn.begin().await?;
        let previous = sqlx::query(
            "DELETE FROM contexts WHERE environment = ? AND context_id = ? RETURNING *",
        )
        .bind(namespace.key())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(context_from_row)
        .transpose()?;
        let Some(previous) = previous else {
            return Ok(None);
        };
        let deleted_thumbnail =
            delete_unreferenced(&mut tx, namespace, &previous.thumbnail_id).await?;
        tx.commit().await?;
        Ok(Some(ContextChange {
            previous: Some(previous),
            deleted_thumbnail,
        }))
    }
}
