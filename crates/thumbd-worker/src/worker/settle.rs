//! Ending a delivery: telling waiters and `replyTo`, deleting the original, and settling the
//! lease (ack, retry with backoff, dead-letter), with heartbeats while work runs.

use std::sync::Arc;

use thumbd_jobs::{BlobKey, JobId, JobMessage, JobRecord, JobSource, Lease};

use super::Worker;
use crate::outcome::{Outcome, StepError};

impl Worker {
    /// Awaits `work`, renewing `lease` (if any) every `heartbeat` meanwhile.
    pub(super) async fn heartbeat_while<T>(
        &self,
        lease: Option<&Lease>,
        work: impl Future<Output = T>,
    ) -> T {
        let Some(lease) = lease else {
            return work.await;
        };
        tokio::pin!(work);
        let mut tick = tokio::time::interval(self.options.heartbeat);
        tick.tick().await;
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tick.tick() => {
                    match self.queue.heartbeat(lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!("lease lost while processing"),
                        Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                    }
                }
            }
        }
    }

    /// Job `id` just finished (its stored `record`, when at hand): tells waiting requests in
    /// this process, and the producer's `replyTo` queue if it gave one (best effort: the
    /// status stays readable over HTTP).
    pub(super) async fn finished(
        &self,
        id: JobId,
        message: &JobMessage,
        record: Option<Arc<JobRecord>>,
    ) {
        match &record {
            Some(r) => self.events.finished_record(Arc::clone(r)),
            None => self.events.finished(id),
        }
        let (Some(reply_to), Some(reply_body)) = (&message.reply_to, self.reply_body) else {
            return;
        };
        let record = match record {
            Some(record) => record,
            None => match self.store.job(id).await {
                Ok(Some(record)) => Arc::new(record),
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(job_id = %id, error = %e, "cannot read the job for its reply");
                    return;
                }
            },
        };
        let body = reply_body(&record);
        match self.queue.reply(reply_to, &body).await {
            Ok(true) => tracing::debug!(job_id = %id, reply_to, "reply sent"),
            Ok(false) => {}
            Err(e) => tracing::warn!(job_id = %id, reply_to, error = %e, "reply not sent"),
        }
    }

    /// Deletes the claim-check original of job `id` (only the one the API stored for it).
    pub(super) async fn delete_original(&self, id: JobId, source: &JobSource) {
        if let JobSource::Blob { blob_key } = source
            && *blob_key == BlobKey::original(id)
            && let Err(e) = self.blobs.delete(blob_key).await
        {
            tracing::warn!(blob = %blob_key, error = %e, "cannot delete an original");
        }
    }

    /// Acks the delivery in hand (a local run has none) and returns `outcome`.
    pub(super) async fn settle_ack(
        &self,
        lease: Option<&Lease>,
        id: JobId,
        outcome: Outcome,
    ) -> Outcome {
        let Some(lease) = lease else {
            return outcome;
        };
        match self.queue.ack(lease).await {
            Ok(true) => outcome,
            Ok(false) => {
                tracing::warn!(job_id = %id, "lease lost before ack: the job will be redelivered and skipped");
                Outcome::LeaseLost { job: id }
            }
            Err(e) => {
                tracing::warn!(job_id = %id, error = %e, "ack failed: the job will be redelivered and skipped");
                Outcome::LeaseLost { job: id }
            }
        }
    }

    pub(super) async fn retry(&self, lease: &Lease, id: JobId, error: &StepError) -> Outcome {
        let delay = self.options.backoff(lease.retries.saturating_add(1));
        if matches!(error, StepError::Source(_)) {
            tracing::info!(job_id = %id, %error, retry_in = ?delay, "URL source failed: retrying");
        } else {
            tracing::warn!(job_id = %id, %error, retry_in = ?delay, "transient failure: retrying");
        }
        if let Err(e) = self.store.requeue_job(id).await {
            tracing::warn!(job_id = %id, error = %e, "cannot mark the job queued again");
        }
        match self.queue.retry(lease, delay).await {
            Ok(true) => Outcome::Retried { job: id, delay },
            _ => Outcome::LeaseLost { job: id },
        }
    }

    pub(super) async fn dead_letter(
        &self,
        lease: &Lease,
        job: Option<JobId>,
        reason: String,
    ) -> Outcome {
        match self.queue.dead_letter(lease, &reason).await {
            Ok(true) => Outcome::DeadLettered { job, reason },
            Ok(false) | Err(_) => Outcome::LeaseLost {
                job: job.unwrap_or_else(|| JobId::derived_from(&lease.payload)),
            },
        }
    }
}
