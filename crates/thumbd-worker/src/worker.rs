//! `Worker`: one delivery at a time ([`Worker::process_one`]) or a loop ([`Worker::run`]).

use std::cell::RefCell;
use std::sync::Arc;
use thumbd_codes::Code;

use bytes::Bytes;
use sha2::Digest as _;
use thumbcore::{Thumbnail, Thumbnailer};
use thumbd_jobs::{
    BlobKey, BlobStore, JobEvents, JobFailure, JobId, JobMessage, JobQueue, JobRecord, JobResult,
    JobSource, Lease, LocalRun, LocalWorker, MetaStore, Tenant, Timestamp, views::StatusView,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::downloads::Downloads;
use crate::options::WorkerOptions;
use crate::outcome::{Outcome, StepError};

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
}

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
            options,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &WorkerOptions {
        &self.options
    }

    /// This worker as the [`LocalWorker`] of an API in the same process (`thumbd serve`):
    /// it takes up to `prefetch` jobs at once that way, besides the ones it leases.
    pub fn local(self: &Arc<Self>) -> Arc<dyn LocalWorker> {
        Arc::new(Local(Arc::clone(self)))
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

    /// Runs until `shutdown` is cancelled: leases up to `prefetch` jobs at once, then,
    /// once cancelled, leases nothing more and returns when the jobs in hand are settled.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(
            self.options.prefetch.max(self.options.concurrency).max(1),
        ));
        let mut tasks = JoinSet::new();
        let mut failures = 0u32;
        loop {
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot.expect("never closed"),
                () = shutdown.cancelled() => break,
            };
            if shutdown.is_cancelled() {
                break;
            }
            // Not raced against shutdown: dropping a lease call halfway could leave a message
            // leased by nobody until its timeout. `lease_wait` bounds the delay instead.
            match self.queue.lease(self.options.lease_wait).await {
                Ok(Some(lease)) => {
                    failures = 0;
                    let worker = self.clone();
                    tasks.spawn(async move {
                        // A URL source trades its slot for a download slot: the loop leases
                        // the next job while a remote server takes its time. When every
                        // download slot is taken, or its tenant already downloads its share
                        // here, it goes back to the queue for a moment, holding nothing.
                        let (slot, turn) = match url_source_tenant(&lease) {
                            None => (slot, None),
                            Some(tenant) => {
                                let turn = worker.downloads.tenant_turn(&tenant);
                                let download = worker.downloads.try_slot();
                                let (Some(turn), Some(download)) = (turn, download) else {
                                    drop(slot);
                                    return worker.defer(lease, &tenant).await;
                                };
                                drop(slot);
                                (download, Some(turn))
                            }
                        };
                        let outcome = worker.process_one(lease).await;
                        drop((slot, turn));
                        outcome
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    failures += 1;
                    let nap = self.options.backoff(failures);
                    tracing::error!(error = %e, retry_in = ?nap, "cannot lease from the queue");
                    tokio::select! {
                        () = tokio::time::sleep(nap) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
            }
            while tasks.try_join_next().is_some() {}
        }
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(in_flight, "worker stopping: finishing jobs in hand");
        }
        while tasks.join_next().await.is_some() {}
        // And the jobs the API handed over (their requests may have stopped waiting).
        let _ = self.local_slots.acquire_many(self.local_permits).await;
        tracing::info!("worker stopped");
    }

    /// Puts back a delivery whose source cannot be downloaded here now (every download slot
    /// taken, or its tenant's share): it comes back after [`DOWNLOAD_DEFER`], nothing done
    /// and nothing counted.
    async fn defer(&self, lease: Lease, tenant: &Tenant) -> Outcome {
        let job = JobMessage::parse(&lease.payload)
            .ok()
            .and_then(|m| m.job_id)
            .unwrap_or_else(|| JobId::derived_from(&lease.payload));
        tracing::debug!(job_id = %job, %tenant, "no download slot for the tenant: deferred");
        match self.queue.put_back(&lease, DOWNLOAD_DEFER).await {
            Ok(true) => Outcome::Retried {
                job,
                delay: DOWNLOAD_DEFER,
            },
            Ok(false) | Err(_) => Outcome::LeaseLost { job },
        }
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

    /// Runs a job the API of this process handed over with its `original` in memory (see
    /// [`LocalWorker`]): the steps of a leased job, with nothing to read and nothing to
    /// settle. A transient failure puts the job back to `queued` for the caller to queue.
    async fn process_local(&self, id: JobId, message: &JobMessage, original: Bytes) -> LocalRun {
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
    async fn hand_back(&self, id: JobId, error: &StepError) -> (Outcome, LocalRun) {
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
            self.thumbnail(original).await
        };
        let thumb = self.heartbeat_while(lease, work).await?;

        let sha = hex(&sha2::Sha256::digest(&thumb.bytes));
        let key = BlobKey::thumbnail(&sha, id);
        let result = JobResult {
            width: thumb.width,
            height: thumb.height,
            bytes: thumb.bytes.len() as u64,
            content_type: thumb.content_type().into(),
            etag: sha,
            blob_key: key.clone(),
            budget: format!("{:?}", thumb.budget).to_lowercase(),
            animated: thumb.source.animated,
        };
        self.blobs.put(&key, Bytes::from(thumb.bytes)).await?;
        self.options
            .metrics
            .written(usize::try_from(result.bytes).unwrap_or(usize::MAX));
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
                Ok(Some(job)) => job.result.map(|r| r.blob_key),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(job_id = %id, error = %e, "cannot tell whether a duplicate result is in use: keeping it");
                    Some(key.clone())
                }
            };
            if kept.as_ref() != Some(&key)
                && let Err(e) = self.blobs.delete(&key).await
            {
                tracing::warn!(blob = %key, error = %e, "cannot delete a duplicate result");
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

    /// The original's bytes. `attempts`: the job's starts, this one included (a URL that
    /// keeps failing transiently is tried [`URL_FETCH_ATTEMPTS`] times; a job deferred for
    /// its tenant's share was not started).
    async fn source_bytes(&self, source: &JobSource, attempts: u32) -> Result<Bytes, StepError> {
        match source {
            JobSource::Blob { blob_key } => self.blobs.get(blob_key).await?.ok_or_else(|| {
                tracing::warn!(blob = %blob_key, "the job's original does not exist");
                StepError::permanent(
                    Code::SourceFetchFailed,
                    "the original image is not available",
                )
            }),
            JobSource::Inline { content_type, .. } => {
                let bytes = source
                    .inline_bytes()
                    .expect("inline source")
                    .map_err(|e| StepError::permanent(Code::InvalidRequestBody, e.to_string()))?;
                thumbcore::check_declared_type(
                    content_type,
                    &bytes,
                    self.options.spec.limits.accept_formats,
                )
                .map_err(|e| StepError::from_image(e.code(), e.to_string()))?;
                Ok(Bytes::from(bytes))
            }
            JobSource::Url { url } => self.fetcher.fetch(url).await.map_err(|e| {
                if e.is_transient() && attempts < URL_FETCH_ATTEMPTS {
                    StepError::Source(e.to_string())
                } else {
                    StepError::permanent(e.code(), e.to_string())
                }
            }),
        }
    }

    /// Probes, waits for room in the decode budget, then runs thumbcore on the image threads
    /// for at most the spec's time limit plus a grace (the caller renews the lease).
    async fn thumbnail(&self, original: Bytes) -> Result<Thumbnail, StepError> {
        use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

        /// Image threads given up on (past the time limit and the grace) that have not yet
        /// returned, in this process.
        static ABANDONED: AtomicUsize = AtomicUsize::new(0);
        /// How much longer than thumbcore's own time limit the worker waits for its answer
        /// (thumbcore checks the clock cooperatively; this catches a thread wedged where it
        /// does not).
        const GRACE: std::time::Duration = std::time::Duration::from_secs(5);
        const RUNNING: u8 = 0;
        const DONE: u8 = 1;
        const GIVEN_UP: u8 = 2;
        let spec = &self.options.spec;
        let image_error = |e: thumbcore::Error| StepError::from_image(e.code(), e.to_string());
        let panicked = || {
            // A panic in thumbcore is a bug; the input must not loop through workers.
            tracing::error!("thumbcore panicked");
            StepError::permanent(Code::InternalError, "the image could not be processed")
        };
        spec.limits
            .check_input_len(original.len())
            .map_err(image_error)?;
        // Admission needs the probe's answer before an image thread is taken, so the probe
        // runs here: it reads the header only (markers or chunks, no pixels, no allocation
        // beyond the answer), but it is thumbcore parsing untrusted bytes all the same, so it
        // runs under catch_unwind like the pipeline.
        let info = std::panic::catch_unwind(|| spec.limits.probe(&original))
            .map_err(|_| panicked())?
            .map_err(image_error)?;
        spec.limits.check(&info).map_err(image_error)?;
        // What decoding will really hold (coefficient buffers of progressive JPEGs, PNG's
        // full-size and premultiplied copies), clamped to the whole budget: a job larger than
        // the budget runs alone.
        // The budget is `pixel_budget` pixels of 4 bytes: each permit (`PIXELS_PER_PERMIT`
        // pixels in `Worker::new`) is 4 KiB of what thumbcore says decoding will hold.
        let permits = self
            .options
            .job_permits(spec.decode_cost(&info))
            .min(self.pixel_permits);
        let budget = self
            .pixels
            .clone()
            .acquire_many_owned(permits)
            .await
            .expect("never closed");

        let spec = spec.clone();
        let limit = spec.limits.max_duration;
        let spare_limit = self.spare_limit;
        let state = Arc::new(AtomicU8::new(RUNNING));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let state = Arc::clone(&state);
            self.images.spawn(move || {
                // The budget's permits go with this closure: a job given up on still holds
                // its memory until its thread really returns, so they are released then, not
                // when the job fails.
                let _budget = budget;
                let _ = started_tx.send(());
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    THUMBNAILER.with(|t| {
                        let mut t = t.borrow_mut();
                        t.set_spare_limit(spare_limit);
                        t.thumbnail(&original, &spec)
                    })
                }));
                if state.swap(DONE, Ordering::AcqRel) == GIVEN_UP {
                    let left = ABANDONED.fetch_sub(1, Ordering::Relaxed) - 1;
                    tracing::warn!(
                        abandoned_image_threads = left,
                        "an image thread given up on has returned"
                    );
                }
                let _ = tx.send(result);
            });
        }
        // The clock starts when an image thread takes the job (thumbcore's own deadline
        // starts there too), not while it waits for one.
        if started_rx.await.is_err() {
            return Err(panicked());
        }
        let answer = match limit {
            Some(limit) => {
                let mut work = rx;
                match tokio::time::timeout(limit.saturating_add(GRACE), &mut work).await {
                    Ok(answer) => answer,
                    Err(_)
                        if state
                            .compare_exchange(
                                RUNNING,
                                GIVEN_UP,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_ok() =>
                    {
                        let abandoned = ABANDONED.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::warn!(
                            abandoned_image_threads = abandoned,
                            limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
                            "thumbcore did not answer within the time limit: the job fails, its image thread is left to finish"
                        );
                        return Err(StepError::permanent(
                            Code::ProcessingTimeout,
                            format!("processing the image took longer than the limit of {limit:?}"),
                        ));
                    }
                    // It returned just now: take its answer.
                    Err(_) => work.await,
                }
            }
            None => rx.await,
        };
        match answer {
            Ok(Ok(r)) => r.map_err(image_error),
            Ok(Err(_)) | Err(_) => Err(panicked()),
        }
    }

    /// Awaits `work`, renewing `lease` (if any) every `heartbeat` meanwhile.
    async fn heartbeat_while<T>(&self, lease: Option<&Lease>, work: impl Future<Output = T>) -> T {
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
    async fn finished(&self, id: JobId, message: &JobMessage, record: Option<Arc<JobRecord>>) {
        match &record {
            Some(r) => self.events.finished_record(Arc::clone(r)),
            None => self.events.finished(id),
        }
        let Some(reply_to) = &message.reply_to else {
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
        let body = serde_json::to_vec(&StatusView::from(&*record)).expect("serializable");
        match self.queue.reply(reply_to, &body).await {
            Ok(true) => tracing::debug!(job_id = %id, reply_to, "reply sent"),
            Ok(false) => {}
            Err(e) => tracing::warn!(job_id = %id, reply_to, error = %e, "reply not sent"),
        }
    }

    /// Deletes the claim-check original of job `id` (only the one the API stored for it).
    async fn delete_original(&self, id: JobId, source: &JobSource) {
        if let JobSource::Blob { blob_key } = source
            && *blob_key == BlobKey::original(id)
            && let Err(e) = self.blobs.delete(blob_key).await
        {
            tracing::warn!(blob = %blob_key, error = %e, "cannot delete an original");
        }
    }

    /// Acks the delivery in hand (a local run has none) and returns `outcome`.
    async fn settle_ack(&self, lease: Option<&Lease>, id: JobId, outcome: Outcome) -> Outcome {
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

    async fn retry(&self, lease: &Lease, id: JobId, error: &StepError) -> Outcome {
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

    async fn dead_letter(&self, lease: &Lease, job: Option<JobId>, reason: String) -> Outcome {
        match self.queue.dead_letter(lease, &reason).await {
            Ok(true) => Outcome::DeadLettered { job, reason },
            Ok(false) | Err(_) => Outcome::LeaseLost {
                job: job.unwrap_or_else(|| JobId::derived_from(&lease.payload)),
            },
        }
    }
}

/// The tenant of a delivery whose job downloads its source (a malformed payload does not).
fn url_source_tenant(lease: &Lease) -> Option<Tenant> {
    JobMessage::parse(&lease.payload)
        .ok()
        .filter(|m| matches!(m.source, JobSource::Url { .. }))
        .map(|m| m.tenant)
}

/// [`Worker::local`].
struct Local(Arc<Worker>);

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

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
