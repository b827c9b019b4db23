//! `Worker`: one delivery at a time ([`Worker::process_one`]) or a loop ([`Worker::run`]).

use std::cell::RefCell;
use std::sync::Arc;
use thumbd_codes::Code;

use bytes::Bytes;
use sha2::Digest as _;
use thumbcore::{Profile, RenditionSet, Thumbnailer};
use thumbd_jobs::{
    BlobKey, BlobStore, JobEvents, JobFailure, JobId, JobMessage, JobQueue, JobRecord, JobResult,
    Lease, LocalWorker, MetaStore, RenditionResult, RenditionStatus, RenditionWork, SourceInfo,
    Timestamp,
};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::downloads::Downloads;
use crate::options::WorkerOptions;
use crate::outcome::{Outcome, StepError};

mod image;
mod local;
mod run;
mod settle;

thread_local! {
    /// One thumbnailer per image thread: its decoder and resizer buffers are reused.
    static THUMBNAILER: RefCell<Thumbnailer> = RefCell::new(Thumbnailer::new());
}

/// Consumes jobs from a [`JobQueue`], makes thumbnails, stores them and settles the lease.
///
/// Order of writes for a job: result blob, then job status (and the thumbnail record, in
/// one transaction), then ack. A crash between any two is safe: a redelivered job that is
/// already finished is acked and skipped; one that is not is simply done again.
pub struct Worker {
    queue: Arc<dyn JobQueue>,
    store: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    events: JobEvents,
    options: WorkerOptions,
    pixels: Arc<Semaphore>,
    pixel_permits: u32,
    /// The decode buffer each image thread may keep between jobs: together at most half
    /// the pixel budget's bytes (RGBA), and at most thumbcore's default.
    spare_limit: usize,
    /// Jobs the API of this process may hand over at once ([`Worker::local`]), besides the
    /// leased ones: `prefetch` of them.
    local_slots: Arc<Semaphore>,
    local_permits: u32,
    /// Jobs with a URL source in hand at once in [`Worker::run`], besides `prefetch` others,
    /// in all and per tenant.
    downloads: Arc<Downloads>,
    /// Threads that run thumbcore: `concurrency` of them, at a lower CPU priority than the
    /// async runtime (and its blocking pool, which does file I/O for the API).
    images: Arc<rayon::ThreadPool>,
    /// Downloads URL sources through the SSRF guard.
    fetcher: thumbd_fetch::Fetcher,
    /// The body of a reply to a producer's `replyTo` queue (the API's status JSON); none:
    /// no replies are sent.
    reply_body: Option<ReplyBody>,
    /// Where AVIF renditions are deferred to ([`RENDITION_LANE`](thumbd_jobs::RENDITION_LANE)); none: they are encoded
    /// with the job.
    rendition_lane: Option<Arc<dyn JobQueue>>,
}

/// Makes the body of a `replyTo` message from a finished job's record.
pub type ReplyBody = fn(&JobRecord) -> Vec<u8>;

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Pixels per budget permit: semaphores count in `u32`, budgets reach billions.
const PIXELS_PER_PERMIT: u64 = 1024;

/// Attempts at a URL source that keeps failing transiently (unreachable, 5xx, timeout)
/// before its job fails with `SourceFetchFailed`.
const URL_FETCH_ATTEMPTS: u32 = 3;

/// How long a URL source's job waits in the queue when no download slot is free for it.
const DOWNLOAD_DEFER: std::time::Duration = std::time::Duration::from_secs(1);

impl Worker {
    /// A worker over the three backends; `events` tells waiting requests in this process.
    pub fn new(
        queue: Arc<dyn JobQueue>,
        store: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        events: JobEvents,
        options: WorkerOptions,
    ) -> Self {
        let pixel_permits = u32::try_from(options.pixel_budget.div_ceil(PIXELS_PER_PERMIT))
            .unwrap_or(u32::MAX >> 3)
            .clamp(1, u32::MAX >> 3);
        let images = rayon::ThreadPoolBuilder::new()
            .num_threads(options.concurrency.max(1))
            .thread_name(|i| format!("thumbd-image-{i}"))
            .start_handler(|_| crate::priority::lower_this_thread())
            .build()
            .expect("image threads start");
        let local_permits = u32::try_from(options.prefetch.max(options.concurrency).max(1))
            .unwrap_or(u32::MAX >> 3)
            .min(u32::MAX >> 3);
        Worker {
            queue,
            store,
            blobs,
            events,
            pixels: Arc::new(Semaphore::new(pixel_permits as usize)),
            pixel_permits,
            spare_limit: usize::try_from(
                options.pixel_budget.saturating_mul(4) / 2 / options.concurrency.max(1) as u64,
            )
            .unwrap_or(usize::MAX)
            .min(Thumbnailer::DEFAULT_SPARE_LIMIT),
            local_slots: Arc::new(Semaphore::new(local_permits as usize)),
            local_permits,
            downloads: Downloads::new(options.downloads, options.downloads_per_tenant),
            images: Arc::new(images),
            fetcher: thumbd_fetch::Fetcher::new(options.fetch.clone()),
            reply_body: None,
            rendition_lane: None,
            options,
        }
    }

    /// Defers AVIF renditions to `lane` (the [`RENDITION_LANE`](thumbd_jobs::RENDITION_LANE) queue): a job stores their
    /// sources, lists them `pending` and succeeds without waiting for the encoder; a
    /// [`RenditionLane`](crate::RenditionLane) on the same queue makes them.
    pub fn with_rendition_lane(mut self, lane: Arc<dyn JobQueue>) -> Self {
        self.rendition_lane = Some(lane);
        self
    }

    /// Answers producers that name a `replyTo` queue with `body` of each finished job (the
    /// binary passes the API's `status_body`, so a reply reads like `GET /v1/status/{id}`).
    pub fn with_replies(mut self, body: ReplyBody) -> Self {
        self.reply_body = Some(body);
        self
    }

    /// The options in use.
    pub fn options(&self) -> &WorkerOptions {
        &self.options
    }

    /// This worker as the [`LocalWorker`] of an API in the same process (`thumbd serve`):
    /// it takes up to `prefetch` jobs at once that way, besides the ones it leases.
    pub fn local(self: &Arc<Self>) -> Arc<dyn LocalWorker> {
        Arc::new(local::Local(Arc::clone(self)))
    }

    /// Leases and processes messages until the queue has none for `options.lease_wait`;
    /// returns every outcome. Sequential: for tests and one-shot tools.
    pub async fn drain(&self) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        while let Ok(Some(lease)) = self.queue.lease(self.options.lease_wait).await {
            outcomes.push(self.process_one(lease).await);
        }
        outcomes
    }

    /// Processes one delivery completely, settling its lease (ack, retry or dead-letter),
    /// and counts it in the metrics.
    pub async fn process_one(&self, lease: Lease) -> Outcome {
        let start = std::time::Instant::now();
        let outcome = self.process(lease).await;
        self.options
            .metrics
            .processed(&outcome, start.elapsed().as_secs_f64());
        outcome
    }

    async fn process(&self, lease: Lease) -> Outcome {
        let message = match JobMessage::parse(&lease.payload) {
            Ok(m) => m,
            Err(e) => {
                let reason = format!("malformed message: {e}");
                tracing::warn!(%reason, "dead-lettering");
                return self.dead_letter(&lease, None, reason).await;
            }
        };
        let id = message
            .job_id
            .unwrap_or_else(|| JobId::derived_from(&lease.payload));

        if lease.deliveries > self.options.max_deliveries {
            let reason = format!(
                "gave up after {} deliveries",
                lease.deliveries.saturating_sub(1)
            );
            return self.give_up(&lease, id, &message, reason).await;
        }

        // Every log line of the job's work carries its id.
        let span = tracing::info_span!("job", job_id = %id);
        let attempt = self.attempt(id, &message, Some(&lease), None);
        match attempt.instrument(span).await {
            Ok(outcome) => outcome,
            Err(StepError::Permanent { code, message: msg }) => {
                match self.fail(id, &message, code, msg).await {
                    Ok(()) => {
                        self.delete_original(id, &message.source).await;
                        let outcome = Outcome::Failed { job: id, code };
                        self.settle_ack(Some(&lease), id, outcome).await
                    }
                    Err(e) => self.retry(&lease, id, &e.into()).await,
                }
            }
            Err(e)
                if e.counts_toward_limit()
                    && lease.retries.saturating_add(1) >= self.options.max_deliveries =>
            {
                tracing::error!(job_id = %id, error = %e, retries = lease.retries, "the same failure again: giving up");
                let reason = format!("gave up after {} retries: {e}", lease.retries);
                self.give_up(&lease, id, &message, reason).await
            }
            Err(e) => self.retry(&lease, id, &e).await,
        }
    }

    /// Fails job `id` `InternalError` (a fixed message; `reason` goes to the dead letter and
    /// the log), deletes its original and dead-letters the message.
    async fn give_up(
        &self,
        lease: &Lease,
        id: JobId,
        message: &JobMessage,
        reason: String,
    ) -> Outcome {
        let msg = "the job failed too many times; it was set aside".to_owned();
        match self.fail(id, message, Code::InternalError, msg).await {
            // Finished (now or before): nothing will read its original again.
            Ok(()) => self.delete_original(id, &message.source).await,
            Err(e) => {
                tracing::error!(job_id = %id, error = %e, "cannot record the failure");
            }
        }
        self.dead_letter(lease, Some(id), reason).await
    }

    /// Records job `id` `failed` with `code`, makes that durable, and tells waiters if it
    /// applied.
    async fn fail(
        &self,
        id: JobId,
        message: &JobMessage,
        code: Code,
        msg: String,
    ) -> thumbd_jobs::Result<()> {
        tracing::info!(job_id = %id, %code, message = %msg, "job failed");
        let failure = JobFailure { code, message: msg };
        let applied = self
            .store
            .finish_failed(id, &failure, Timestamp::now())
            .await?;
        // Durable before anyone hears of it and before the caller deletes the original —
        // also when another delivery finished it first: that one may have stopped short.
        self.store.make_durable(id).await?;
        if applied {
            self.finished(id, message, None).await;
        }
        Ok(())
    }

    /// The job's work, up to and including the status update and the ack. `lease` is the
    /// delivery in hand, `None` for a local run, which brings its `original`.
    async fn attempt(
        &self,
        id: JobId,
        message: &JobMessage,
        lease: Option<&Lease>,
        original: Option<Bytes>,
    ) -> Result<Outcome, StepError> {
        // Producers may publish without creating the record: create it when start_job finds
        // none (the API always has, so its jobs cost one round trip here, not two).
        let job = match self.store.start_job(id, Timestamp::now()).await? {
            Some(job) => job,
            None => {
                self.store
                    .create_job(&JobRecord::queued(id, message, Timestamp::now()))
                    .await?;
                // Its message is the one in hand: nothing for the sweeper to republish.
                self.store.mark_published(id).await?;
                self.store
                    .start_job(id, Timestamp::now())
                    .await?
                    .ok_or_else(|| {
                        StepError::Transient(thumbd_jobs::Error::Damaged(format!(
                            "job {id} vanished"
                        )))
                    })?
            }
        };
        if let Some(lease) = lease
            && (job.tenant != message.tenant
                || job.environment != message.environment
                || job.thumbnail_id != message.thumbnail_id)
        {
            // Another job's id (another tenant's, maybe): its source must not become that
            // job's thumbnail. The record was started by this delivery: put it back.
            if let Err(e) = self.store.requeue_job(id).await {
                tracing::warn!(job_id = %id, error = %e, "cannot put a job back to queued");
            }
            let reason = "the message names a job whose record is for another thumbnail";
            tracing::warn!(job_id = %id, reason, "dead-lettering");
            return Ok(self.dead_letter(lease, Some(id), reason.into()).await);
        }
        if job.status.is_finished() {
            tracing::info!(job_id = %id, status = job.status.as_str(), "already finished: skipping");
            // A finished job needs its original no more (a duplicate message, say one queued
            // when a local run overran its wait, may be all that is left to delete it) —
            // once its record is durable: the delivery that finished it may have failed
            // just before making it so.
            self.store.make_durable(id).await?;
            self.delete_original(id, &message.source).await;
            return Ok(self
                .settle_ack(lease, id, Outcome::Skipped { job: id })
                .await);
        }

        let profile = self.profile(&job)?;
        // A local run brings its original; nothing was stored for it.
        let stored_original = original.is_none();
        // A download, a wait for pixel budget and the image work may each take long for a
        // healthy job: the lease is renewed meanwhile, so it is never redelivered (and
        // counted) while this delivery still works on it.
        let work = async {
            let original = match original {
                Some(bytes) => bytes,
                None => self.source_bytes(&message.source, job.attempts).await?,
            };
            self.render(original, profile).await
        };
        let set = self.heartbeat_while(lease, work).await?;
        let result = self.store_set(id, profile, set).await?;
        if result.has_pending()
            && let Some(lane) = &self.rendition_lane
        {
            // Before the finish: a crash after it would leave them pending for ever. Until
            // the job has succeeded the lane puts the message back; a retried job pushes
            // again, and the lane skips what is no longer pending.
            lane.push_bytes(&RenditionWork { job_id: id }.to_json())
                .await?;
        }
        let now = Timestamp::now();
        let finished = self.store.finish_succeeded(id, &result, now).await?;
        // Before the original goes and before anyone hears of it (a 201 follows): a record
        // lost to a power loss would run the job again without its original. Also when
        // another delivery finished it first: that one may not have got this far.
        self.store.make_durable(id).await?;
        for orphan in &finished.orphaned {
            if let Err(e) = self.blobs.delete(orphan).await {
                tracing::warn!(blob = %orphan, error = %e, "cannot delete a replaced thumbnail");
            }
        }
        if stored_original {
            self.delete_original(id, &message.source).await;
        }
        if finished.applied {
            // The record as `finish_succeeded` just stored it: waiters need not read it.
            let record = Arc::new(job.succeeded(result.clone(), now));
            self.finished(id, message, Some(record)).await;
        } else {
            // Finished by another delivery meanwhile: ours is a duplicate. Output is
            // deterministic and keys are per job, so the other delivery usually wrote the
            // very same key, which its record now serves: delete ours only if it is not that.
            let kept = match self.store.job(id).await {
                Ok(Some(job)) => job.result.map(|r| r.blob_keys()).unwrap_or_default(),
                Ok(None) => Vec::new(),
                Err(e) => {
                    tracing::warn!(job_id = %id, error = %e, "cannot tell whether a duplicate result is in use: keeping it");
                    result.blob_keys()
                }
            };
            for key in result.blob_keys() {
                if !kept.contains(&key)
                    && let Err(e) = self.blobs.delete(&key).await
                {
                    tracing::warn!(blob = %key, error = %e, "cannot delete a duplicate result");
                }
            }
            self.events.finished(id);
            return Ok(self
                .settle_ack(lease, id, Outcome::Skipped { job: id })
                .await);
        }
        tracing::info!(
            job_id = %id,
            width = result.width,
            height = result.height,
            bytes = result.bytes,
            current = finished.current,
            "job succeeded"
        );
        Ok(self
            .settle_ack(
                lease,
                id,
                Outcome::Succeeded {
                    job: id,
                    current: finished.current,
                },
            )
            .await)
    }
}

impl Worker {
    /// The profile `job` makes: the one it names, or its environment's default. A name
    /// this worker does not know (a producer's typo, or a profile removed since the job was
    /// accepted) fails the job: every worker shares one configuration, so no retry would
    /// help.
    fn profile(&self, job: &JobRecord) -> Result<&Profile, StepError> {
        let profiles = &self.options.profiles;
        match &job.profile {
            None => Ok(profiles.default_for(job.environment.as_str())),
            Some(name) => profiles.get(name).ok_or_else(|| {
                StepError::permanent(
                    Code::InvalidRequestBody,
                    format!(
                        "unknown profile {name:?}: known are {}",
                        profiles.names().join(", ")
                    ),
                )
            }),
        }
    }

    /// Stores every rendition of `set` (job `id`'s, made for `profile`) and returns the job's
    /// result: the main rendition's fields, every rendition, the placeholder and the source.
    async fn store_set(
        &self,
        id: JobId,
        profile: &Profile,
        set: RenditionSet,
    ) -> Result<JobResult, StepError> {
        let mut renditions = Vec::with_capacity(set.renditions.len());
        for (index, made) in set.renditions.into_iter().enumerate() {
            let format = made.rendition.output.format;
            // A pending rendition (deferred) has no bytes, ETag or budget step until the lane
            // makes it; its source waits under a key of the job's own.
            let sha = (!made.deferred).then(|| hex(&sha2::Sha256::digest(&made.bytes)));
            let (status, key, source_key) = match &sha {
                Some(sha) => (RenditionStatus::Ready, BlobKey::thumbnail(sha, id), None),
                None => {
                    let source = BlobKey::rendition_source(id, index);
                    (RenditionStatus::Pending, source.clone(), Some(source))
                }
            };
            let ready = sha.is_some();
            renditions.push(RenditionResult {
                size: made.rendition.size(),
                width: made.width,
                height: made.height,
                format: format.name().to_owned(),
                spec: made.rendition.to_string(),
                content_type: format.content_type().to_owned(),
                bytes: if ready { made.bytes.len() as u64 } else { 0 },
                etag: sha.unwrap_or_default(),
                blob_key: key.clone(),
                budget: if ready {
                    budget_name(made.budget)
                } else {
                    String::new()
                },
                status,
                source_key,
            });
            if ready {
                self.options.metrics.written(made.bytes.len());
            }
            self.blobs.put(&key, Bytes::from(made.bytes)).await?;
        }
        let main = profile.main();
        Ok(JobResult {
            animated: set.source.animated,
            placeholder: Some(thumbd_jobs::Placeholder {
                thumbhash: set.placeholder.thumbhash,
                blurhash: set.placeholder.blurhash,
                average_color: set.placeholder.average_color,
            }),
            profile: Some(profile.name.clone()),
            source: Some(SourceInfo {
                width: set.source.width,
                height: set.source.height,
                format: set.source.format.name().to_owned(),
                animated: set.source.animated,
            }),
            ..JobResult::of_set(renditions, main)
        })
    }
}

/// What the size budget did, as results say it (`fits`, `recompressed`, …).
pub(crate) fn budget_name(step: thumbcore::BudgetStep) -> String {
    format!("{step:?}").to_lowercase()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
