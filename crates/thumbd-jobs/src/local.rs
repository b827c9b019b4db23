//! [`LocalWorker`]: the workers of the API's own process (`thumbd serve`), which can take a
//! job straight from the request that created it.

use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::job::JobRecord;

/// How a job handed to a [`LocalWorker`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalRun {
    /// Finished, `succeeded` or `failed`: the stored record is final and was announced on
    /// [`JobEvents`](crate::JobEvents) (with the record, when the worker had it at hand).
    Finished,
    /// Not finished (a backend failed transiently; the record is `queued` again): the
    /// caller queues the job as usual.
    Unfinished,
}

/// A worker in the API's process that runs a job at once, its original still in memory:
/// nothing is stored before the work and nothing goes through the queue.
///
/// A job is accepted when its request is answered (ARCHITECTURE.md, life of a job). The caller answers `201` only
/// after a [`LocalRun::Finished`] (the thumbnail and the record are stored by then); for a
/// run that is not finished within the wait, or [`LocalRun::Unfinished`], it stores the
/// original and queues the job before answering `202`. A crash before either answer loses
/// only an unanswered request; its record, never published, is swept up by the
/// [`JobStore::unpublished_jobs`](crate::JobStore::unpublished_jobs) sweep and fails for
/// want of an original.
pub trait LocalWorker: Send + Sync {
    /// Runs the job of `record` (already created, `queued`, not published) with `original`
    /// as its image if the worker can take it now; `None` when it cannot (the caller queues
    /// it). The handle resolves when the run ends; a run outlives a dropped handle.
    fn try_run(&self, record: &JobRecord, original: Bytes) -> Option<JoinHandle<LocalRun>>;
}
