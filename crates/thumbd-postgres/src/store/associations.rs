//! Contexts, uploads and idempotency keys in PostgreSQL, for several processes at once
//! (READ COMMITTED, like every transaction of the store).
//!
//! # Contexts: one advisory lock per thumbnail name
//!
//! "Delete the thumbnail when its last context goes" is a check-then-act across rows: two
//! transactions removing the last two references would each still see the other's (not yet
//! committed) context and keep the thumbnail, and a put adding a reference could commit
//! between another transaction's check and its delete. So every transaction that adds or
//! removes a reference to thumbnail A holds a transaction-scoped advisory lock on
//! (environment, A) from before its check until its commit: the second transaction's check
//! then runs after the first committed, and sees it (each statement of READ COMMITTED takes a
//! new snapshot).
//!
//! Advisory locks rather than row locks because the thing to lock is a *name*: a context may
//! reference a thumbnail that has no record yet (its job is still running), and there is no
//! row to lock for "no context references A".
//!
//! Lock order, so no two transactions wait on each other in a cycle: the context's row (by
//! `SELECT … FOR UPDATE`, the upsert or the `DELETE`), then the advisory locks in ascending
//! key order (a re-point takes two: old and new), then the thumbnail row (the delete).
//! `finish_succeeded` locks a job row then a thumbnail row and never waits on the others.
//!
//! # Idempotency keys: the key's primary key
//!
//! `INSERT … ON CONFLICT DO UPDATE … WHERE stale` either claims the key (new or stale row)
//! or leaves a fresh one alone; a concurrent insert of the same key waits for the first
//! transaction to end and then sees its row, so exactly one creates.

use async_trait::async_trait;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{Postgres, Row as _, Transaction};
use thumbd_jobs::{
    AssociationStore, Claim, ContextChange, ContextId, ContextRecord, Environment, Error,
    IdempotencyKey, JobId, JobRecord, Namespace, Result, ThumbnailId, ThumbnailRecord, Timestamp,
    UploadRecord, UploadTicket,
};

use super::{PgMetaStore, insert_job, thumbnail_from_row, utf8};
use thumbd_jobs::rows::upload_from_row;

/// The advisory lock class for thumbnail names (the first key of the two-key form, so the
/// locks cannot collide with the migration lock's class or one-key locks of other programs).
const THUMBNAIL_LOCK_CLASS: i32 = 0x7468_7472; // "thtr"

/// The columns of a [`ContextRecord`]; json comes back as text.
macro_rules! context_columns {
    () => {
        "environment, context_id, thumbnail_id, body::text AS body, created_at, updated_at"
    };
}

/// The columns of an [`UploadRecord`].
macro_rules! upload_columns {
    () => {
        "ticket, tenant, environment, blob_key, content_type, bytes, created_at, expires_at"
    };
}

fn context_from_row(row: &PgRow) -> Result<ContextRecord> {
    let damaged = |e: Error| Error::Damaged(format!("context row: {e}"));
    let context_id = utf8(row.try_get("context_id")?, "contexts.context_id")?;
    let thumbnail_id = utf8(row.try_get("thumbnail_id")?, "contexts.thumbnail_id")?;
    let namespace = Namespace::from_key(row.try_get("environment")?).map_err(damaged)?;
    Ok(ContextRecord {
        tenant: namespace.tenant,
        environment: namespace.environment,
        context_id: ContextId::parse(&context_id).map_err(damaged)?,
        thumbnail_id: ThumbnailId::parse(&thumbnail_id).map_err(damaged)?,
        body: row.try_get("body")?,
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

/// The advisory lock key of a thumbnail name: 32-bit FNV-1a of the namespace's key, a 0xFF
/// separator (never in UTF-8) and the id. Stable across builds and processes, as it must be;
/// a collision only makes two unrelated thumbnails take turns.
fn lock_key(namespace: &Namespace, id: &ThumbnailId) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    let key = namespace.key();
    let bytes = key.bytes().chain([0xff]);
    for b in bytes.chain(id.as_str().bytes()) {
        hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// Takes the advisory locks of `ids` (in `namespace`) in ascending key order, each once, held
/// until the transaction ends.
async fn lock_thumbnails(
    tx: &mut PgConnection,
    namespace: &Namespace,
    ids: &[&ThumbnailId],
) -> Result<()> {
    let mut keys: Vec<i32> = ids.iter().map(|id| lock_key(namespace, id)).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(THUMBNAIL_LOCK_CLASS)
            .bind(key)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Deletes thumbnail `id` if no context references it (the caller holds its lock).
async fn delete_unreferenced(
    tx: &mut PgConnection,
    namespace: &Namespace,
    id: &ThumbnailId,
) -> Result<Option<ThumbnailRecord>> {
    let deleted = sqlx::query(concat!(
        "DELETE FROM thumbnails t WHERE t.environment = $1 AND t.thumbnail_id = $2 \
         AND NOT EXISTS (SELECT 1 FROM contexts c \
         WHERE c.environment = $1 AND c.thumbnail_id = $2) RETURNING ",
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
        let event = thumbd_jobs::Event::thumbnail_deleted(namespace, id, Timestamp::now());
        super::webhooks::write_event(tx, namespace, &event).await?;
    }
    Ok(deleted)
}

/// Locks the context's row and returns it, or inserts `context` (then holding the new row's
/// lock) and returns `None`.
async fn lock_or_insert_context(
    tx: &mut Transaction<'_, Postgres>,
    context: &ContextRecord,
) -> Result<Option<ContextRecord>> {
    loop {
        let row = sqlx::query(concat!(
            "SELECT ",
            context_columns!(),
            " FROM contexts WHERE environment = $1 AND context_id = $2 FOR UPDATE"
        ))
        .bind(context.namespace().key())
        .bind(context.context_id.as_str().as_bytes())
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = row {
            return context_from_row(&row).map(Some);
        }
        let inserted = sqlx::query(
            "INSERT INTO contexts (environment, context_id, thumbnail_id, body, created_at, \
             updated_at) VALUES ($1, $2, $3, $4::json, $5, $6) \
             ON CONFLICT (environment, context_id) DO NOTHING",
        )
        .bind(context.namespace().key())
        .bind(context.context_id.as_str().as_bytes())
        .bind(context.thumbnail_id.as_str().as_bytes())
        .bind(&context.body)
        .bind(context.created_at.0)
        .bind(context.updated_at.0)
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(None);
        }
        // Another put created it after our SELECT (the INSERT waited for that commit): go
        // round and lock that row. Only a delete in between makes a third round.
    }
}

#[async_trait]
impl AssociationStore for PgMetaStore {
    async fn create_job_idempotent(
        &self,
        job: &JobRecord,
        key: &IdempotencyKey,
        fresh_after: Timestamp,
    ) -> Result<Claim> {
        let pool = &self.pool;
        let mut tx = pool.begin().await?;
        loop {
            // Claims the key if it is free or stale; otherwise locks the fresh row (ON CONFLICT
            // DO UPDATE locks the conflicting row even when its WHERE is false).
            let claimed = sqlx::query(
                "INSERT INTO idempotency_keys AS k (client, environment, key, job_id, created_at) \
             VALUES ($1, $2, $3, $4::uuid, $5) ON CONFLICT (client, environment, key) \
             DO UPDATE SET job_id = excluded.job_id, created_at = excluded.created_at \
             WHERE k.created_at <= $6",
            )
            .bind(key.client.as_bytes())
            .bind(key.namespace().key())
            .bind(key.key.as_bytes())
            .bind(job.id.to_string())
            .bind(job.created_at.0)
            .bind(fresh_after.0)
            .execute(&mut *tx)
            .await?;
            if claimed.rows_affected() == 1 {
                break;
            }
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT job_id::text FROM idempotency_keys \
             WHERE client = $1 AND environment = $2 AND key = $3",
            )
            .bind(key.client.as_bytes())
            .bind(key.namespace().key())
            .bind(key.key.as_bytes())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = existing {
                let id = JobId::parse(&id)
                    .map_err(|e| Error::Damaged(format!("idempotency key row: {e}")))?;
                return Ok(Claim::Existing(id));
            }
            // Unreachable while we hold the row's lock; should it ever be gone, claim again.
        }
        insert_job(job)?.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Claim::Created)
    }

    async fn idempotent_job(
        &self,
        key: &IdempotencyKey,
        fresh_after: Timestamp,
    ) -> Result<Option<JobId>> {
        let pool = &self.pool;
        let id: Option<String> = sqlx::query_scalar(
            "SELECT job_id::text FROM idempotency_keys \
         WHERE client = $1 AND environment = $2 AND key = $3 AND created_at > $4",
        )
        .bind(key.client.as_bytes())
        .bind(key.namespace().key())
        .bind(key.key.as_bytes())
        .bind(fresh_after.0)
        .fetch_optional(pool)
        .await?;
        id.map(|id| {
            JobId::parse(&id).map_err(|e| Error::Damaged(format!("idempotency key row: {e}")))
        })
        .transpose()
    }

    async fn release_idempotency_key(&self, key: &IdempotencyKey, job: JobId) -> Result<()> {
        let pool = &self.pool;
        sqlx::query(
            "DELETE FROM idempotency_keys \
         WHERE client = $1 AND environment = $2 AND key = $3 AND job_id = $4::uuid",
        )
        .bind(key.client.as_bytes())
        .bind(key.namespace().key())
        .bind(key.key.as_bytes())
        .bind(job.to_string())
        .execute(pool)
        .await?;
        Ok(())
    }

    async fn purge_idempotency_keys(&self, before: Timestamp) -> Result<u64> {
        let pool = &self.pool;
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(before.0)
            .execute(pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_upload(&self, upload: &UploadRecord) -> Result<()> {
        let pool = &self.pool;
        let bytes = i64::try_from(upload.bytes).map_err(|_| Error::Invalid {
            what: "upload",
            reason: "too large to record".into(),
        })?;
        sqlx::query(
            "INSERT INTO uploads (ticket, tenant, environment, blob_key, content_type, bytes, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(upload.ticket.as_str())
        .bind(upload.tenant.as_str())
        .bind(upload.environment.map(Environment::as_str))
        .bind(upload.blob_key.as_str())
        .bind(&upload.content_type)
        .bind(bytes)
        .bind(upload.created_at.0)
        .bind(upload.expires_at.0)
        .execute(pool)
        .await?;
        Ok(())
    }

    async fn upload(&self, ticket: &UploadTicket, now: Timestamp) -> Result<Option<UploadRecord>> {
        let pool = &self.pool;
        sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE ticket = $1 AND expires_at > $2"
        ))
        .bind(ticket.as_str())
        .bind(now.0)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(upload_from_row)
        .transpose()
    }

    /// Purgers in several processes skip each other's rows: each upload is returned once.
    async fn purge_expired_uploads(&self, now: Timestamp, limit: u32) -> Result<Vec<UploadRecord>> {
        let pool = &self.pool;
        sqlx::query(concat!(
            "DELETE FROM uploads WHERE ticket IN (SELECT ticket FROM uploads \
         WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING ",
            upload_columns!()
        ))
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
        .iter()
        .map(upload_from_row)
        .collect()
    }

    async fn put_context(&self, context: &ContextRecord) -> Result<ContextChange> {
        let pool = &self.pool;
        let namespace = context.namespace();
        let mut tx = pool.begin().await?;
        let previous = lock_or_insert_context(&mut tx, context).await?;
        let old = previous.as_ref().map(|p| &p.thumbnail_id);
        let ids: Vec<&ThumbnailId> = old.into_iter().chain([&context.thumbnail_id]).collect();
        lock_thumbnails(&mut tx, &namespace, &ids).await?;
        let mut deleted_thumbnail = None;
        if let Some(old) = old {
            // A replacement keeps the first created_at.
            sqlx::query(
                "UPDATE contexts SET thumbnail_id = $3, body = $4::json, updated_at = $5 \
             WHERE environment = $1 AND context_id = $2",
            )
            .bind(namespace.key())
            .bind(context.context_id.as_str().as_bytes())
            .bind(context.thumbnail_id.as_str().as_bytes())
            .bind(&context.body)
            .bind(context.updated_at.0)
            .execute(&mut *tx)
            .await?;
            if *old != context.thumbnail_id {
                deleted_thumbnail = delete_unreferenced(&mut tx, &namespace, old).await?;
            }
        }
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
        let pool = &self.pool;
        sqlx::query(concat!(
            "SELECT ",
            context_columns!(),
            " FROM contexts WHERE environment = $1 AND context_id = $2"
        ))
        .bind(namespace.key())
        .bind(id.as_str().as_bytes())
        .fetch_optional(pool)
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
        let pool = &self.pool;
        let mut tx = pool.begin().await?;
        // The DELETE locks the row; one racing with a put sees the put's committed version.
        let previous = sqlx::query(concat!(
            "DELETE FROM contexts WHERE environment = $1 AND context_id = $2 \
         RETURNING ",
            context_columns!()
        ))
        .bind(namespace.key())
        .bind(id.as_str().as_bytes())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(previous) = previous.as_ref().map(context_from_row).transpose()? else {
            return Ok(None);
        };
        lock_thumbnails(&mut tx, namespace, &[&previous.thumbnail_id]).await?;
        let deleted_thumbnail =
            delete_unreferenced(&mut tx, namespace, &previous.thumbnail_id).await?;
        tx.commit().await?;
        Ok(Some(ContextChange {
            previous: Some(previous),
            deleted_thumbnail,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_fnv1a_and_per_namespace() {
        // Every process must compute the same key: pinned to FNV-1a's values (the default
        // tenant's are those of the environment alone, as before tenants).
        let id = ThumbnailId::parse("cover/42").unwrap();
        let dev = Namespace::default_tenant(Environment::Development);
        assert_eq!(lock_key(&dev, &id), 0x07d5_f0fd);
        assert_eq!(
            lock_key(&Namespace::default_tenant(Environment::Production), &id),
            0x71f1_0fad
        );
        let acme = Namespace::new(
            thumbd_jobs::Tenant::parse("acme").unwrap(),
            Environment::Development,
        );
        assert_ne!(lock_key(&acme, &id), lock_key(&dev, &id));
        let nul = ThumbnailId::parse("a\0b").unwrap();
        assert_ne!(
            lock_key(&dev, &nul),
            lock_key(&dev, &ThumbnailId::parse("a").unwrap())
        );
    }
}
