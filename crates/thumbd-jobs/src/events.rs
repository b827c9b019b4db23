//! `JobEvents`: in-process news of finished jobs, so a waiting request wakes at once instead
//! of at its next poll.

use tokio::sync::broadcast;

use crate::ids::JobId;

/// A broadcast of finished job ids within one process. Best effort by design: a waiter also
/// polls the [`MetaStore`](crate::MetaStore), which stays the truth (and is all a process
/// that does not run the job can see).
#[derive(Debug, Clone)]
pub struct JobEvents {
    tx: broadcast::Sender<JobId>,
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
        let _ = self.tx.send(id);
    }

    /// Ids finished from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JobId> {
        self.tx.subscribe()
    }
}

impl Default for JobEvents {
    fn default() -> Self {
        Self::new()
    }
}
