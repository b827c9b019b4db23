//! [`Intake`]: accepting a job. Idempotency, the record, storing the original, publishing,
//! a local run, waiting for the end and refusals live here, in domain types; the API only
//! maps HTTP onto [`CreateJob`] and [`Accepted`] / [`Refused`] back onto answers.
//!
//! A job is accepted when its caller is answered. From then on it is never lost: by then its
//! record is stored, and either it has finished (its record made durable) or its original
//! is durable and its message is in the queue.

mod publish_marks;
mod upkeep;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use thumbd_codes::Code;
use tokio::sync::broadcast;

pub use publish_marks::PublishMarks;

use crate::associations::{Claim, IdempotencyKey};
use crate::blob::BlobStore;
use crate::error::{Error, Result};
use crate::events::{FinishedJob, JobEvents};
use crate::ids::{BlobKey, JobId, Namespace, ThumbnailId};
use crate::job::{JobFailure, JobMessage, JobRecord, JobSource};
use crate::local::{LocalRun, LocalWorker};
use crate::queue::JobQueue;
use crate::store::MetaStore;
use crate::timestamp::Timestamp;
use crate::webhooks::Dispatcher;

/// How long an idempotency key names its first job.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// What a new job is made from.
#[derive(Debug, Clone)]
pub enum NewSource {
    /// The image itself (already checked by its caller: type, header, limits). Stored as the
    /// job's original under [`BlobKey::original`] unless the job runs locally at once.
    Bytes(Bytes),
    /// A URL the worker downloads.
    Url(String),
}

/// A job to accept.
#[derive(Debug, Clone)]
pub struct CreateJob {
    /// Whose, and in which environment.
    pub namespace: Namespace,
    /// The thumbnail it creates or replaces.
    pub thumbnail_id: ThumbnailId,
    /// What it is made from.
    pub source: NewSource,
    /// The caller's idempotency key: a second create with it within
    /// [`IDEMPOTENCY_WINDOW`] answers with this job.
    pub idempotency: Option<IdempotencyKey>,
    /// How long the caller waits for the job to finish; zero answers at once.
    pub wait: Duration,
    /// The profile whose renditions it makes (checked by the caller); none: the workers'
    /// default.
    pub profile: Option<String>,
}

/// A job accepted (or found again by its idempotency key), with its record as of the answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Finished (succeeded or failed) within the wait; its record is durable.
    Finished(JobRecord),
    /// Not finished within the wait: queued (or running); its original is durable.
    Pending(JobRecord),
    /// An earlier job with the same idempotency key, finished or not.
    Replayed(JobRecord),
}

impl Accepted {
    /// The job's record.
    pub fn record(&self) -> &JobRecord {
        match self {
            Accepted::Finished(r) | Accepted::Pending(r) | Accepted::Replayed(r) => r,
        }
    }
}

/// Why a job was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The idempotency key was used within the window for another thumbnail: the caller
    /// mixed up its keys.
    #[error("the idempotency key was used in the last 24 h for thumbnail {0:?}, not this one")]
    KeyReused(ThumbnailId),
    /// The idempotency key names a job that does not exist (keys live 24 h and jobs at
    /// least 24 h after finishing: a bug or an edit of the store).
    #[error("the idempotency key names job {0}, which does not exist")]
    KeyLost(JobId),
    /// A store, the blob store or the queue failed: nothing was accepted.
    #[error(transparent)]
    Backend(#[from] Error),
}

/// The parts an [`Intake`] works with.
#[derive(Clone)]
pub struct IntakeParts {
    /// Job records, idempotency keys.
    pub store: Arc<dyn MetaStore>,
    /// Where jobs go.
    pub queue: Arc<dyn JobQueue>,
    /// Where webhook deliveries go: the queue's [`WEBHOOK_LANE`](crate::WEBHOOK_LANE).
    pub webhook_queue: Arc<dyn JobQueue>,
    /// Originals.
    pub blobs: Arc<dyn BlobStore>,
    /// Finished-job news from workers in this process (and relayed from the store).
    pub events: JobEvents,
    /// The worker of this very process (`thumbd serve`), which runs a waiting create's job
    /// at once when it has room; `None` in `thumbd api`.
    pub local_worker: Option<Arc<dyn LocalWorker>>,
}

/// Accepts jobs: see the module documentation.
pub struct Intake {
    parts: IntakeParts,
    marks: PublishMarks,
    webhooks: Dispatcher,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("local_worker", &self.parts.local_worker.is_some())
            .finish_non_exhaustive()
    }
}

impl Intake {
    /// An intake over `parts`; starts the task that writes publish marks (on the current
    /// tokio runtime).
    pub fn new(parts: IntakeParts) -> Self {
        let marks = PublishMarks::spawn(parts.store.clone());
        let webhooks = Dispatcher::new(parts.store.clone(), parts.webhook_queue.clone());
        Intake {
            parts,
            marks,
            webhooks,
        }
    }

    /// What queues webhook deliveries: [`nudge`](Dispatcher::nudge) it after a change that
    /// may have written some (jobs finished in this process wake it by themselves).
    pub fn webhooks(&self) -> &Dispatcher {
        &self.webhooks
    }

    /// The job an earlier create with `key` made, waited for up to `wait`, if `key` names
    /// one within [`IDEMPOTENCY_WINDOW`]; `None` otherwise (the caller goes on to
    /// [`create`](Self::create)).
    pub async fn replay(
        &self,
        key: &IdempotencyKey,
        thumbnail_id: &ThumbnailId,
        wait: Duration,
    ) -> Result<Option<Accepted>, Refused> {
        let fresh_after = Timestamp::now().minus(IDEMPOTENCY_WINDOW);
        match self.parts.store.idempotent_job(key, fresh_after).await? {
            Some(first) => self.replayed(first, thumbnail_id, wait).await.map(Some),
            None => Ok(None),
        }
    }

    /// Accepts `job`: its record, then (unless this process's worker runs it at once) its
    /// original and its message; then waits up to `job.wait` for it to finish.
    pub async fn create(&self, job: CreateJob) -> Result<Accepted, Refused> {
        let parts = &self.parts;
        let fresh_after = Timestamp::now().minus(IDEMPOTENCY_WINDOW);
        let job_id = JobId::new();
        let (job_source, original, kind) = match job.source {
            NewSource::Bytes(bytes) => {
                let key = BlobKey::original(job_id);
                let source = JobSource::Blob {
                    blob_key: key.clone(),
                };
                (source, Some((key, bytes)), "bytes")
            }
            NewSource::Url(url) => (JobSource::Url { url }, None, "url"),
        };
        let environment = job.namespace.environment;
        let message = JobMessage {
            job_id: Some(job_id),
            tenant: job.namespace.tenant,
            environment,
            thumbnail_id: job.thumbnail_id,
            source: job_source,
            reply_to: None,
            profile: job.profile,
        };
        let record = JobRecord::queued(job_id, &message, Timestamp::now());
        // The record first; then, unless this process's worker takes the job at once, the
        // claim check and the message: whatever fails, no message points at something missing.
        let claim = match &job.idempotency {
            Some(key) => {
                parts
                    .store
                    .create_job_idempotent(&record, key, fresh_after)
                    .await?
            }
            None => parts
                .store
                .create_job(&record)
                .await
                .map(|_| Claim::Created)?,
        };
        if let Claim::Existing(first) = claim {
            // A concurrent create with the same key won: answer with its job.
            return self.replayed(first, &record.thumbnail_id, job.wait).await;
        }
        let deadline = tokio::time::Instant::now() + job.wait;
        // Subscribed before the job can run, so no announcement of it can be missed and the
        // wait needs no first read of a record just written.
        let events = (!job.wait.is_zero()).then(|| parts.events.subscribe());
        // `thumbd serve`: a create that waits runs at once on this process's worker when it
        // has room, its original in memory (`LocalWorker`). Accepted means answered: finished
        // it is; overrunning the wait, or failing transiently, it is queued like any other.
        let mut ran_locally = false;
        if !job.wait.is_zero()
            && let (Some((_, bytes)), Some(local)) = (&original, &parts.local_worker)
            && let Some(run) = local.try_run(&record, Bytes::clone(bytes))
        {
            ran_locally = matches!(
                tokio::time::timeout_at(deadline, run).await,
                Ok(Ok(LocalRun::Finished))
            );
        }
        if !ran_locally {
            // A create answered at once has its original made durable and its job marked
            // published now; a waiting one only if it is answered unfinished (below): most
            // finish first, their originals deleted unwritten, and the sweeper republishes
            // unfinished jobs alone.
            let answered_now = events.is_none();
            if let Err(e) = self
                .enqueue(&message, original.as_ref(), answered_now)
                .await
            {
                let original = original.as_ref().map(|(k, _)| k);
                self.not_accepted(&record, original, job.idempotency.as_ref(), &e)
                    .await;
                return Err(e.into());
            }
            if answered_now {
                self.marks.mark(job_id);
            }
        }
        tracing::info!(job_id = %job_id, thumbnail_id = %record.thumbnail_id, %environment, source = kind, ran_locally, "job accepted");

        let record = match events {
            // Answered at once: the record just written is the answer; no read back.
            None => record,
            Some(events) if ran_locally => self
                .finished_record(job_id, events)
                .await?
                .unwrap_or(record),
            Some(events) => {
                let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
                let waited = self.wait(job_id, wait, events, Some(record.clone())).await;
                if !matches!(&waited, Ok(Some(r)) if r.status.is_finished()) {
                    self.marks.mark(job_id);
                    // Accepted unfinished: from this answer on, the job must survive a crash.
                    // (Should the sync fail, the caller is refused, and the job may still run.)
                    if waited.is_ok()
                        && let Some((key, _)) = &original
                    {
                        parts.blobs.sync(key).await?;
                    }
                }
                waited?.unwrap_or(record)
            }
        };
        Ok(if record.status.is_finished() {
            Accepted::Finished(record)
        } else {
            Accepted::Pending(record)
        })
    }

    /// The answer for job `first`, which an idempotency key named: waited for as usual. A
    /// key reused for another thumbnail is refused.
    async fn replayed(
        &self,
        first: JobId,
        thumbnail_id: &ThumbnailId,
        wait: Duration,
    ) -> Result<Accepted, Refused> {
        let events = self.parts.events.subscribe();
        let known = self.parts.store.job(first).await?;
        if let Some(known) = &known
            && known.thumbnail_id != *thumbnail_id
        {
            return Err(Refused::KeyReused(known.thumbnail_id.clone()));
        }
        let Some(record) = self.wait(first, wait, events, known).await? else {
            tracing::error!(job_id = %first, "an idempotency key names a job that does not exist");
            return Err(Refused::KeyLost(first));
        };
        tracing::info!(job_id = %first, "idempotent replay");
        Ok(Accepted::Replayed(record))
    }

    /// Stores the claim-check `original` (if the job has one; `synced`: durable at once),
    /// then pushes `message`.
    async fn enqueue(
        &self,
        message: &JobMessage,
        original: Option<&(BlobKey, Bytes)>,
        synced: bool,
    ) -> Result<()> {
        if let Some((key, bytes)) = original {
            let bytes = Bytes::clone(bytes);
            if synced {
                self.parts.blobs.put(key, bytes).await?;
            } else {
                self.parts.blobs.put_unsynced(key, bytes).await?;
            }
        }
        self.parts.queue.push(message).await
    }

    /// The record of a job a local run has just finished: from its announcement, already in
    /// `events`, or else read from the store.
    async fn finished_record(
        &self,
        id: JobId,
        mut events: broadcast::Receiver<FinishedJob>,
    ) -> Result<Option<JobRecord>> {
        while let Ok(done) = events.try_recv() {
            if done.id == id {
                if let Some(record) = done.record {
                    return Ok(Some(JobRecord::clone(&record)));
                }
                break;
            }
        }
        self.parts.store.job(id).await
    }

    /// Waits up to `wait` for job `id` to finish, from `record` — read (or just written)
    /// after `events` subscribed, so no announcement is missed. Wakes on [`JobEvents`] (this
    /// process's workers, or the store's notifications relayed), and polls the store (the
    /// truth) only as a fallback, every 100 ms growing to 1 s. A finished record it read
    /// (not one announced, which its worker made durable first) is made durable before it
    /// is returned: an answer may follow.
    async fn wait(
        &self,
        id: JobId,
        wait: Duration,
        mut events: broadcast::Receiver<FinishedJob>,
        mut record: Option<JobRecord>,
    ) -> Result<Option<JobRecord>> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut poll = Duration::from_millis(100);
        loop {
            if let Some(r) = &record
                && r.status.is_finished()
            {
                self.parts.store.make_durable(id).await?;
                return Ok(record);
            }
            if record.is_none() {
                return Ok(record);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(record);
            }
            let nap = poll.min(deadline - now);
            let heard = tokio::time::timeout(nap, async {
                loop {
                    match events.recv().await {
                        Ok(done) if done.id == id => return done.record,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => return None,
                        Err(broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await;
                        }
                    }
                }
            })
            .await;
            // The worker that finished it sent the record it stored: no need to read it back.
            if let Ok(Some(finished)) = heard {
                return Ok(Some(JobRecord::clone(&finished)));
            }
            poll = (poll * 2).min(Duration::from_secs(1));
            record = self.parts.store.job(id).await?;
        }
    }

    /// The job could not be queued (the blob store or the queue refused): its record says
    /// so, so nobody waits for it; then its original (if it got stored) is dropped, and its
    /// idempotency key freed (a retry must start a new job). Should the broker still deliver
    /// a message it timed out on, the worker finds the job finished and skips it.
    async fn not_accepted(
        &self,
        record: &JobRecord,
        original: Option<&BlobKey>,
        idempotency: Option<&IdempotencyKey>,
        error: &Error,
    ) {
        let store = &self.parts.store;
        let id = record.id;
        tracing::warn!(job_id = %id, %error, "the job could not be queued");
        // The cause stays in the log: a job's record is the client's to read.
        let failure = JobFailure {
            code: Code::ServiceUnavailable,
            message: "the job could not be queued; retry later".into(),
        };
        let recorded = match store.finish_failed(id, &failure, Timestamp::now()).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(job_id = %id, error = %e, "cannot record a refused job");
                false
            }
        };
        if let Some(key) = idempotency
            && let Err(e) = store.release_idempotency_key(key, id).await
        {
            tracing::warn!(job_id = %id, error = %e, "cannot free the idempotency key of a refused job");
        }
        // Kept while the job may still run (its message may have reached the broker after
        // all): a worker deletes it when the job finishes.
        if recorded
            && let Some(original) = original
            && let Err(e) = self.parts.blobs.delete(original).await
        {
            tracing::warn!(blob = %original, error = %e, "cannot delete a refused job's original");
        }
    }
}
