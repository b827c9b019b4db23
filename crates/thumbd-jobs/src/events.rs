//! `JobEvents`: in-process news of finished jobs, so a waiting request wakes at once instead
//! of at its next poll.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::ids::JobId;
use crate::job::JobRecord;

/// News that a job finished.
#[derive(Debug, Clone)]
pub struct FinishedJob {
    /// Which job.
    pub id: JobId,
    /// Its finished record, when the announcer had it (the worker that just wrote it): a
    /// waiter can answer from it without reading the store.
    pub record: Option<Arc<JobRecord>>,
}

/// A broadcast of finished job ids within one process. Best effort by design: a waiter also
/// polls the [`MetaStore`](crate::MetaStore), which stays the truth (and is all a process
/// that does not run the job can see).
#[derive(Debug, Clone)]
pub struct JobEvents {
    tx: broadcast::Sender<FinishedJob>,
}

impl JobEvents {
    /// A new channel.
    pub fn new() -> Self {
        JobEvents {
            tx: broadcast::channel(1024).0,
        }
    }

    /// Tells waiters that `id` finished.
    pub fn finished(&self, id: JobId) {
        let _ = self.tx.send(FinishedJob { id, record: None });
    }

    /// Tells waiters that a job finished, with its record exactly as it was stored.
    pub fn finished_record(&self, record: Arc<JobRecord>) {
        let _ = self.tx.send(FinishedJob {
            id: record.id,
            record: Some(record),
        });
    }

    /// Jobs finished from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FinishedJob> {
        self.tx.subscribe()
    }
}

impl Default for JobEvents {
    fn default() -> Self {
        Self::new()
    }
}
