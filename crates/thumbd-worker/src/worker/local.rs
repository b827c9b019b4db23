//! Local runs: a job the API of this process hands over with its original in memory
//! (`thumbd serve`), run at once without the queue round trip.

use std::sync::Arc;

use bytes::Bytes;
use thumbd_jobs::{JobId, JobMessage, JobRecord, LocalRun, LocalWorker};
use tracing::Instrument as _;

use super::Worker;
use crate::outcome::{Outcome, StepError};

impl Worker {
    /// Runs a job the API of this process handed over with its `original` in memory (see
    /// [`LocalWorker`]): the steps of a leased job, with nothing to read and nothing to
    /// settle. A transient failure puts the job back to `queued` for the caller to queue.
    pub(super) async fn process_local(
        &self,
        id: JobId,
        message: &JobMessage,
        original: Bytes,
    ) -> LocalRun {
        let start = std::time::Instant::now();
        let result = match self.attempt(id, message, None, Some(original)).await {
            Err(StepError::Permanent { code, message: msg }) => self
                .fail(id, message, code, msg)
                .await
                .map(|()| Outcome::Failed { job: id, code })
                .map_err(StepError::from),
            other => other,
        };
        // Finished means durable: `attempt` and `fail` made the record so before telling
        // anyone, and its request is answered next.
        let (outcome, run) = match result {
            Ok(outcome) => (outcome, LocalRun::Finished),
            Err(e) => self.hand_back(id, &e).await,
        };
        self.options
            .metrics
            .processed(&outcome, start.elapsed().as_secs_f64());
        run
    }

    /// A local run failed transiently (a permanent failure could not be recorded, or the
    /// finished record not made durable): the job goes back to `queued`, unless finished, and
    /// to its caller, which queues it.
    pub(super) async fn hand_back(&self, id: JobId, error: &StepError) -> (Outcome, LocalRun) {
        tracing::warn!(job_id = %id, %error, "transient failure: handing the job back to the queue");
        if let Err(e) = self.store.requeue_job(id).await {
            tracing::warn!(job_id = %id, error = %e, "cannot mark the job queued again");
        }
        let outcome = Outcome::Retried {
            job: id,
            delay: std::time::Duration::ZERO,
        };
        (outcome, LocalRun::Unfinished)
    }
}

/// [`Worker::local`].
pub(super) struct Local(pub(super) Arc<Worker>);

impl LocalWorker for Local {
    fn try_run(
        &self,
        record: &JobRecord,
        original: Bytes,
    ) -> Option<tokio::task::JoinHandle<LocalRun>> {
        let slot = Arc::clone(&self.0.local_slots).try_acquire_owned().ok()?;
        let worker = Arc::clone(&self.0);
        let (id, message) = (record.id, record.message());
        let span = tracing::info_span!("job", job_id = %id);
        Some(tokio::spawn(
            async move {
                let run = worker.process_local(id, &message, original).await;
                drop(slot);
                run
            }
            .instrument(span),
        ))
    }
}
