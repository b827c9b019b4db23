//! Getting a job's original (stored, inline or downloaded) and turning it into a thumbnail
//! on the image threads, within the decode budget and the time limit.

use std::sync::Arc;

use bytes::Bytes;
use thumbcore::{Profile, RenditionSet};
use thumbd_codes::Code;
use thumbd_jobs::JobSource;

use super::{THUMBNAILER, URL_FETCH_ATTEMPTS, Worker};
use crate::outcome::StepError;

impl Worker {
    /// The original's bytes. `attempts`: the job's starts, this one included (a URL that
    /// keeps failing transiently is tried [`URL_FETCH_ATTEMPTS`] times; a job deferred for
    /// its tenant's share was not started).
    pub(super) async fn source_bytes(
        &self,
        source: &JobSource,
        attempts: u32,
    ) -> Result<Bytes, StepError> {
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
    pub(super) async fn render(
        &self,
        original: Bytes,
        profile: &Profile,
    ) -> Result<RenditionSet, StepError> {
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
        let spec = &self.options.spec.fitting(&profile.renditions);
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
        let renditions = profile.renditions.clone();
        let defer_avif = self.rendition_lane.is_some();
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
                        if defer_avif {
                            t.render_deferring_avif(&original, &spec, &renditions)
                        } else {
                            t.render(&original, &spec, &renditions)
                        }
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
}
