//! The metadata roles: [`JobStore`] (jobs from creation to finish), [`ThumbnailStore`]
//! (current thumbnails), [`AssociationStore`] (idempotency keys, uploads, contexts) and
//! [`WebhookStore`] (endpoints and deliveries). A backend implements each role directly;
//! [`MetaStore`] is all four plus a health check, what processes hold as
//! `Arc<dyn MetaStore>`.

use async_trait::async_trait;

use crate::associations::{Claim, ContextChange, ContextRecord, IdempotencyKey, UploadRecord};
use crate::error::Result;
use crate::ids::{BlobKey, ContextId, JobId, Namespace, ThumbnailId, UploadTicket};
use crate::job::{JobFailure, JobRecord, JobResult, RenditionResult, ThumbnailRecord};
use crate::listing::{JobQuery, ThumbnailQuery};
use crate::timestamp::Timestamp;
use crate::webhooks::WebhookStore;

/// What [`JobStore::finish_succeeded`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Finished {
    /// False if the job was already finished (a redelivery): nothing changed.
    pub applied: bool,
    /// False if a newer job had already replaced the thumbnail: the job is succeeded but
    /// its bytes are not served.
    pub current: bool,
    /// Blobs no thumbnail references any more (the replaced bytes, or this job's own bytes
    /// when they lost to a newer job): the caller deletes them.
    pub orphaned: Vec<BlobKey>,
}

/// What [`JobStore::finish_renditions`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenditionsFinished {
    /// False if none of the renditions was pending any more (a redelivery), or the job is
    /// gone: nothing changed.
    pub applied: bool,
    /// The job's set is the thumbnail's current one, now with these renditions. False: the
    /// thumbnail was replaced or deleted meanwhile, so the new renditions' blobs are
    /// served by nothing (the caller deletes them).
    pub current: bool,
    /// The pending renditions' sources, no longer needed: the caller deletes them.
    pub freed: Vec<BlobKey>,
}

/// Jobs: their records from creation to finish, publishing marks and retention. Part of
/// [`MetaStore`].
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Inserts a new job; `false` (and no change) if a job with its id exists.
    async fn create_job(&self, job: &JobRecord) -> Result<bool>;

    /// The job, if known.
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>>;

    /// Records that job `id`'s message is in the queue (its push returned `Ok`).
    async fn mark_published(&self, id: JobId) -> Result<()>;

    /// [`mark_published`](Self::mark_published) for many jobs in one round trip (an API
    /// process batches its marks: they are off the request's path, and a mark lost in a
    /// crash only costs the sweeper's duplicate message).
    async fn mark_published_many(&self, ids: &[JobId]) -> Result<()> {
        for &id in ids {
            self.mark_published(id).await?;
        }
        Ok(())
    }

    /// Makes finished job `id`'s record, and every write before it, survive a power loss
    /// where the store's durability promises that for accepted work. Workers call it after
    /// a job finishes and before its original is deleted or anyone is told (a 201 follows):
    /// a finish undone by a power loss would run the job again without its original.
    /// Stores whose finishing commits are durable anyway do nothing (the default).
    async fn make_durable(&self, id: JobId) -> Result<()> {
        let _ = id;
        Ok(())
    }

    /// Up to `limit` unfinished jobs (`queued` or `processing`) whose push was never recorded
    /// and that were created before `before`, oldest first: the process that wrote them died
    /// before it published (or before it recorded the publish), or died running one straight
    /// from its request ([`LocalWorker`](crate::LocalWorker)). The sweeper publishes them
    /// again; a duplicate message is harmless, since workers skip finished jobs.
    async fn unpublished_jobs(&self, before: Timestamp, limit: u32) -> Result<Vec<JobRecord>>;

    /// Marks an unfinished job `processing` and counts an attempt; returns the updated record,
    /// or the record unchanged if it is already finished, or `None` if unknown.
    async fn start_job(&self, id: JobId, now: Timestamp) -> Result<Option<JobRecord>>;

    /// Puts an unfinished job back to `queued` (a retry is scheduled).
    async fn requeue_job(&self, id: JobId) -> Result<()>;

    /// In one transaction: the job becomes `succeeded` with `result`, and its thumbnail
    /// becomes current unless a job accepted later already replaced it.
    async fn finish_succeeded(
        &self,
        id: JobId,
        result: &JobResult,
        now: Timestamp,
    ) -> Result<Finished>;

    /// In one transaction: the pending renditions of succeeded job `id` that `made` names
    /// (by `spec`) become what `made` says (ready or failed) in the job's result, and in
    /// the thumbnail's if the job's set is still current; with a `rendition.ready` event.
    /// Renditions no longer pending are left alone, so a redelivery changes nothing.
    async fn finish_renditions(
        &self,
        id: JobId,
        made: &[RenditionResult],
        now: Timestamp,
    ) -> Result<RenditionsFinished>;

    /// The job becomes `failed`; the current thumbnail (if any) is kept. `false` if it was
    /// already finished.
    async fn finish_failed(&self, id: JobId, failure: &JobFailure, now: Timestamp) -> Result<bool>;

    /// Deletes finished jobs that finished before `before`; returns how many.
    async fn purge_finished_jobs(&self, before: Timestamp) -> Result<u64>;

    /// Up to `query.limit` jobs of `namespace`, newest first ([`JobQuery`]).
    async fn list_jobs(&self, namespace: &Namespace, query: &JobQuery) -> Result<Vec<JobRecord>>;
}

/// Current thumbnails by name (made current by [`JobStore::finish_succeeded`]). Part of
/// [`MetaStore`].
#[async_trait]
pub trait ThumbnailStore: Send + Sync + 'static {
    /// The current thumbnail `id` of `namespace`.
    async fn thumbnail(
        &self,
        namespace: &Namespace,
        id: &ThumbnailId,
    ) -> Result<Option<ThumbnailRecord>>;

    /// Removes a thumbnail and returns it; `None` if there was none. Its blob belongs to it
    /// alone (keys are per job), so the caller deletes `result.blob_keys()`.
    async fn delete_thumbnail(
        &self,
        namespace: &Namespace,
        id: &ThumbnailId,
    ) -> Result<Option<ThumbnailRecord>>;

    /// Up to `query.limit` current thumbnails of `namespace`, by id ([`ThumbnailQuery`]).
    async fn list_thumbnails(
        &self,
        namespace: &Namespace,
        query: &ThumbnailQuery,
    ) -> Result<Vec<ThumbnailRecord>>;
}

/// What clients attach to jobs and thumbnails: idempotency keys, uploads and contexts. Part
/// of [`MetaStore`].
#[async_trait]
pub trait AssociationStore: Send + Sync + 'static {
    /// Like [`create_job`](JobStore::create_job), guarded by an idempotency key, in one
    /// transaction: if `key` already names a job and was recorded after `fresh_after`, returns
    /// [`Claim::Existing`] with that job and creates nothing; otherwise creates `job` and
    /// records `key` → `job.id` (replacing a stale entry). Safe under concurrent requests
    /// with the same key: exactly one creates.
    async fn create_job_idempotent(
        &self,
        job: &JobRecord,
        key: &IdempotencyKey,
        fresh_after: Timestamp,
    ) -> Result<Claim>;

    /// The job `key` names, if it was recorded after `fresh_after` (a cheap check before a
    /// request stores anything).
    async fn idempotent_job(
        &self,
        key: &IdempotencyKey,
        fresh_after: Timestamp,
    ) -> Result<Option<JobId>>;

    /// Forgets `key` if it still names `job` (the job was not accepted after all, so a retry
    /// with the same key must start a new one).
    async fn release_idempotency_key(&self, key: &IdempotencyKey, job: JobId) -> Result<()>;

    /// Deletes idempotency keys recorded before `before`; returns how many.
    async fn purge_idempotency_keys(&self, before: Timestamp) -> Result<u64>;

    /// Stores a new upload.
    async fn create_upload(&self, upload: &UploadRecord) -> Result<()>;

    /// The upload named `ticket`, unless unknown or expired at `now`.
    async fn upload(&self, ticket: &UploadTicket, now: Timestamp) -> Result<Option<UploadRecord>>;

    /// Removes up to `limit` uploads expired at `now` and returns them; the caller deletes
    /// their blobs.
    async fn purge_expired_uploads(&self, now: Timestamp, limit: u32) -> Result<Vec<UploadRecord>>;

    /// Creates or replaces a context, in one transaction: if it is re-pointed from thumbnail
    /// A to another, and no other context in its environment references A any more, A's
    /// thumbnail record is deleted too (and returned). `context.created_at` is used only when
    /// the context is new; a replacement keeps the first one. Safe under concurrent requests:
    /// a thumbnail is deleted once, and never while a committed context references it.
    async fn put_context(&self, context: &ContextRecord) -> Result<ContextChange>;

    /// The context, if any.
    async fn context(&self, namespace: &Namespace, id: &ContextId)
    -> Result<Option<ContextRecord>>;

    /// Deletes a context; `None` if there was none. In the same transaction, deletes the
    /// thumbnail it referenced if no other context references it (returned in the change).
    async fn delete_context(
        &self,
        namespace: &Namespace,
        id: &ContextId,
    ) -> Result<Option<ContextChange>>;
}

/// Durable metadata. All methods are atomic; several processes may share one store
/// in distributed mode. Client keys (thumbnails, contexts, idempotency keys) are scoped by
/// [`Namespace`]: a tenant's environment; jobs and uploads carry their tenant, which callers
/// compare with their own.
///
/// Contract: `conformance::meta_store` (feature `testing`).
#[async_trait]
pub trait MetaStore: JobStore + ThumbnailStore + AssociationStore + WebhookStore {
    /// A cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<()>;
}
