//! `PublishMarks`: records "this job's message is in the queue" in batches, off the
//! request's path. A create used to wait for its own `mark_published` write; now it hands the
//! id to a background task that writes every mark that arrived meanwhile in one round trip.
//! A mark lost to a crash costs one duplicate message from the sweeper, which workers skip.

use std::sync::Arc;
use std::time::Duration;

use crate::ids::JobId;
use crate::store::MetaStore;
use tokio::sync::mpsc;

/// Most marks written in one statement.
const MAX_BATCH: usize = 512;

/// A handle to the batching task; cheap to clone. The task ends (after writing what it
/// holds) when every handle is dropped.
#[derive(Debug, Clone)]
pub struct PublishMarks {
    tx: mpsc::UnboundedSender<JobId>,
}

impl PublishMarks {
    /// Starts the task on the current tokio runtime.
    pub fn spawn(store: Arc<dyn MetaStore>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<JobId>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                write(&*store, &batch).await;
                batch.clear();
            }
        });
        PublishMarks { tx }
    }

    /// Queues the mark for job `id`.
    pub fn mark(&self, id: JobId) {
        if self.tx.send(id).is_err() {
            tracing::warn!(job_id = %id, "publish marks are no longer written; the sweeper will republish the job");
        }
    }
}

/// Writes one batch, retrying a failed write a few times (the store may be restarting).
async fn write(store: &dyn MetaStore, ids: &[JobId]) {
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=4 {
        match store.mark_published_many(ids).await {
            Ok(()) => return,
            Err(e) if attempt < 4 => {
                tracing::warn!(error = %e, jobs = ids.len(), "cannot record published jobs; retrying");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = ids.len(), "cannot record published jobs: the sweeper will publish them again");
            }
        }
    }
}
