//! The `MetaStore` role: jobs and thumbnails (and, later, contexts, uploads and idempotency
//! keys, whose tables already exist).

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{BlobKey, Environment, JobId, ThumbnailId};
use crate::job::{JobFailure, JobRecord, JobResult, ThumbnailRecord};
use crate::timestamp::Timestamp;

/// What [`MetaStore::finish_succeeded`] did.
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

/// Durable metadata (SPEC §1). All methods are atomic; several processes may share one store
/// in distributed mode.
///
/// Contract: [`conformance::meta_store`](crate::conformance::meta_store).
#[async_trait]
pub trait MetaStore: Send + Sync + 'static {
    /// Inserts a new job; `false` (and no change) if a job with its id exists.
    async fn create_job(&self, job: &JobRecord) -> Result<bool>;

    /// The job, if known.
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>>;

    /// Records that job `id`'s message is in the queue (its push returned `Ok`).
    async fn mark_published(&self, id: JobId) -> Result<()>;

    /// Up to `limit` jobs still `queued` whose push was never recorded and that were created
    /// before `before`, oldest first: the process that wrote them died before it published
    /// (or before it recorded the publish). The sweeper publishes them again; a duplicate
    /// message is harmless, since workers skip finished jobs.
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

    /// The job becomes `failed`; the current thumbnail (if any) is kept. `false` if it was
    /// already finished.
    async fn finish_failed(&self, id: JobId, failure: &JobFailure, now: Timestamp) -> Result<bool>;

    /// The current thumbnail.
    async fn thumbnail(
        &self,
        environment: Environment,
        id: &ThumbnailId,
    ) -> Result<Option<ThumbnailRecord>>;

    /// Removes a thumbnail and returns it; `None` if there was none. Its blob belongs to it
    /// alone (keys are per job), so the caller deletes `result.blob_key`.
    async fn delete_thumbnail(
        &self,
        environment: Environment,
        id: &ThumbnailId,
    ) -> Result<Option<ThumbnailRecord>>;

    /// Deletes finished jobs that finished before `before`; returns how many.
    async fn purge_finished_jobs(&self, before: Timestamp) -> Result<u64>;

    /// A cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<()>;
}
