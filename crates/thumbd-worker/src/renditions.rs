//! `RenditionLane`: makes the renditions a job deferred (AVIF), one message of the
//! [`RENDITION_LANE`] at a time, on one image thread of its own at the lowest CPU
//! priority, so it never takes an image thread from the main lane and yields the CPU to it.
//!
//! For each pending rendition of the message's job: its source (the exact pixels, a PNG)
//! is encoded ([`Thumbnailer::encode_deferred`]), stored under a key named by content and
//! job, and the job's result (and the thumbnail's, while the set is current) records it
//! `ready`, or `failed` if the source is gone or the encoder refuses it; then the sources
//! are deleted. Encoding is deterministic, so a redelivery after a crash writes the same
//! keys, and [`JobStore::finish_renditions`] applies once.
//!
//! [`RENDITION_LANE`]: thumbd_jobs::RENDITION_LANE
//! [`JobStore::finish_renditions`]: thumbd_jobs::JobStore::finish_renditions

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sha2::Digest as _;
use thumbcore::{Rendition, ThumbSpec, Thumbnailer};
use thumbd_jobs::{
    BlobKey, BlobStore, JobQueue, JobStatus, Lease, MetaStore, RenditionResult, RenditionStatus,
    RenditionWork, Timestamp,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::worker::{budget_name, hex};

/// How long a message waits when its job has not finished yet (the lane message is pushed
/// just before the finish) or the store does not answer.
const NOT_YET: Duration = Duration::from_secs(2);

/// What became of one lane message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenditionOutcome {
    /// These renditions were recorded (ready or failed).
    Made {
        /// How many became ready.
        ready: usize,
        /// How many failed.
        failed: usize,
    },
    /// Nothing was pending (made already, the job failed or is gone).
    Skipped,
    /// The job has not finished yet, or the store failed: the message comes back later.
    Retried,
    /// The message was not a lane message.
    DeadLettered,
    /// The lease was lost meanwhile; another delivery will settle it.
    LeaseLost,
}

/// Consumes the rendition lane: see the module documentation.
pub struct RenditionLane {
    queue: Arc<dyn JobQueue>,
    store: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    spec: ThumbSpec,
    thread: Arc<rayon::ThreadPool>,
    lease_wait: Duration,
}

impl std::fmt::Debug for RenditionLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenditionLane").finish_non_exhaustive()
    }
}

impl RenditionLane {
    /// A consumer of `queue` (the rendition lane) encoding within `spec`'s budget and time
    /// limit.
    pub fn new(
        queue: Arc<dyn JobQueue>,
        store: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        spec: ThumbSpec,
    ) -> Self {
        let thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "thumbd-renditions".to_owned())
            .start_handler(|_| crate::priority::lower_this_thread_to(crate::priority::BACKGROUND))
            .build()
            .expect("the rendition thread starts");
        RenditionLane {
            queue,
            store,
            blobs,
            spec,
            thread: Arc::new(thread),
            lease_wait: Duration::from_secs(1),
        }
    }

    /// Runs until `shutdown` is cancelled, one message at a time; the one in hand is
    /// finished first.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let leased = tokio::select! {
                leased = self.queue.lease(self.lease_wait) => leased,
                () = shutdown.cancelled() => break,
            };
            match leased {
                Ok(Some(lease)) => {
                    failures = 0;
                    self.process_one(lease).await;
                }
                Ok(None) => {}
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let nap = Duration::from_secs(1 << failures.min(5));
                    tracing::error!(error = %e, retry_in = ?nap, "cannot lease deferred renditions");
                    tokio::select! {
                        () = tokio::time::sleep(nap) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
            }
        }
    }

    /// Leases and processes messages until none comes for a while (tests).
    pub async fn drain(&self) -> Vec<RenditionOutcome> {
        let mut outcomes = Vec::new();
        while let Ok(Some(lease)) = self.queue.lease(self.lease_wait).await {
            outcomes.push(self.process_one(lease).await);
        }
        outcomes
    }

    /// One lane message, to its settlement.
    pub async fn process_one(&self, lease: Lease) -> RenditionOutcome {
        let work = match RenditionWork::parse(&lease.payload) {
            Ok(w) => w,
            Err(e) => {
                let reason = format!("malformed message: {e}");
                tracing::warn!(%reason, "dead-lettering a rendition lane message");
                return match self.queue.dead_letter(&lease, &reason).await {
                    Ok(true) => RenditionOutcome::DeadLettered,
                    _ => RenditionOutcome::LeaseLost,
                };
            }
        };
        let span = tracing::info_span!("renditions", job_id = %work.job_id);
        match self.make(&work).instrument(span).await {
            Ok(Some(outcome)) => match self.queue.ack(&lease).await {
                Ok(true) => outcome,
                _ => RenditionOutcome::LeaseLost,
            },
            Ok(None) => self.later(&lease).await,
            Err(e) => {
                tracing::warn!(error = %e, "deferred renditions postponed");
                self.later(&lease).await
            }
        }
    }

    async fn later(&self, lease: &Lease) -> RenditionOutcome {
        match self.queue.put_back(lease, NOT_YET).await {
            Ok(true) => RenditionOutcome::Retried,
            _ => RenditionOutcome::LeaseLost,
        }
    }

    /// Makes and records the job's pending renditions; `None`: the job has not finished
    /// yet, try later.
    async fn make(&self, work: &RenditionWork) -> thumbd_jobs::Result<Option<RenditionOutcome>> {
        let id = work.job_id;
        let Some(job) = self.store.job(id).await? else {
            return Ok(Some(RenditionOutcome::Skipped));
        };
        match job.status {
            JobStatus::Queued | JobStatus::Processing => return Ok(None),
            JobStatus::Failed => return Ok(Some(RenditionOutcome::Skipped)),
            JobStatus::Succeeded => {}
        }
        let pending: Vec<RenditionResult> = job
            .result
            .iter()
            .flat_map(|r| &r.renditions)
            .filter(|r| r.status == RenditionStatus::Pending)
            .cloned()
            .collect();
        if pending.is_empty() {
            return Ok(Some(RenditionOutcome::Skipped));
        }
        let mut made = Vec::with_capacity(pending.len());
        let mut written = Vec::new();
        for r in pending {
            let done = self.make_one(id, &r).await?;
            if done.status == RenditionStatus::Ready {
                written.push(done.blob_key.clone());
            }
            made.push(done);
        }
        let finished = self
            .store
            .finish_renditions(id, &made, Timestamp::now())
            .await?;
        // Not served by anything: a set replaced or deleted meanwhile, or (a redelivery)
        // blobs another delivery already recorded, under these very keys or not.
        let kept = if !finished.applied {
            self.store
                .job(id)
                .await?
                .and_then(|j| j.result)
                .map(|r| r.blob_keys())
                .unwrap_or_default()
        } else if finished.current {
            written.clone()
        } else {
            Vec::new()
        };
        for key in written.iter().filter(|k| !kept.contains(k)) {
            self.delete(key, "an unserved rendition").await;
        }
        for key in &finished.freed {
            self.delete(key, "a rendition's source").await;
        }
        if !finished.applied {
            return Ok(Some(RenditionOutcome::Skipped));
        }
        let ready = made
            .iter()
            .filter(|r| r.status == RenditionStatus::Ready)
            .count();
        tracing::info!(
            ready,
            failed = made.len() - ready,
            current = finished.current,
            "deferred renditions made"
        );
        Ok(Some(RenditionOutcome::Made {
            ready,
            failed: made.len() - ready,
        }))
    }

    /// Encodes and stores one pending rendition; failed when its source is gone (the set
    /// was replaced or deleted) or the encoder refuses it.
    async fn make_one(
        &self,
        job: thumbd_jobs::JobId,
        pending: &RenditionResult,
    ) -> thumbd_jobs::Result<RenditionResult> {
        let failed = || RenditionResult {
            status: RenditionStatus::Failed,
            source_key: None,
            ..pending.clone()
        };
        let (Some(source_key), Ok(rendition)) =
            (&pending.source_key, pending.spec.parse::<Rendition>())
        else {
            tracing::error!(spec = %pending.spec, "a pending rendition without a source or spec");
            return Ok(failed());
        };
        let Some(source) = self.blobs.get(source_key).await? else {
            return Ok(failed());
        };
        let spec = self.spec.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.thread.spawn(move || {
            let encoded = std::panic::catch_unwind(|| {
                Thumbnailer::encode_deferred(&source, rendition.output, &spec)
            });
            let _ = tx.send(encoded);
        });
        let (bytes, budget) = match rx.await {
            Ok(Ok(Ok(encoded))) => encoded,
            Ok(Ok(Err(e))) => {
                tracing::warn!(spec = %pending.spec, error = %e, "a deferred rendition failed");
                return Ok(failed());
            }
            Ok(Err(_)) | Err(_) => {
                tracing::error!(spec = %pending.spec, "the encoder panicked");
                return Ok(failed());
            }
        };
        let sha = hex(&sha2::Sha256::digest(&bytes));
        let key = BlobKey::thumbnail(&sha, job);
        let len = bytes.len() as u64;
        self.blobs.put(&key, Bytes::from(bytes)).await?;
        Ok(RenditionResult {
            bytes: len,
            etag: sha,
            blob_key: key,
            budget: budget_name(budget),
            status: RenditionStatus::Ready,
            source_key: None,
            ..pending.clone()
        })
    }

    async fn delete(&self, key: &BlobKey, what: &str) {
        if let Err(e) = self.blobs.delete(key).await {
            tracing::warn!(blob = %key, error = %e, "cannot delete {what}");
        }
    }
}
