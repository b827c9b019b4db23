//! The intake's upkeep: what keeps acceptance's promises when a process dies between two
//! writes, and what keeps the stores from growing without end.

use std::future::Future;
use std::time::Duration;

use super::{IDEMPOTENCY_WINDOW, Intake};
use crate::timestamp::Timestamp;

/// A job record older than this whose publish was never recorded is published again.
const UNPUBLISHED_AFTER: Duration = Duration::from_secs(60);
/// How often [`Intake::sweep`] runs.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often [`Intake::purge`] runs.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Most rows one step of the sweep handles.
const BATCH: u32 = 500;

impl Intake {
    /// Runs the upkeep until `stop` resolves: [`purge`](Self::purge) at once and then every
    /// hour (finished jobs older than `retention`); with `sweep`, [`sweep`](Self::sweep) at
    /// once and then every minute (processes that accept jobs; a worker-only process does
    /// not); and the webhook [`Dispatcher`](crate::Dispatcher) all along.
    pub async fn upkeep(&self, retention: Duration, sweep: bool, stop: impl Future<Output = ()>) {
        let stop = futures_util::FutureExt::shared(Box::pin(stop));
        tokio::join!(
            self.webhooks.run(stop.clone()),
            self.purge_and_sweep(retention, sweep, stop),
        );
    }

    async fn purge_and_sweep(
        &self,
        retention: Duration,
        sweep: bool,
        stop: impl Future<Output = ()>,
    ) {
        let mut purge_tick = tokio::time::interval(PURGE_EVERY);
        let mut sweep_tick = tokio::time::interval(SWEEP_EVERY);
        for tick in [&mut purge_tick, &mut sweep_tick] {
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = purge_tick.tick() => self.purge(retention).await,
                _ = sweep_tick.tick(), if sweep => self.sweep().await,
            }
        }
    }

    /// Deletes finished job records and settled webhook deliveries older than `retention`,
    /// and idempotency keys past [`IDEMPOTENCY_WINDOW`].
    pub async fn purge(&self, retention: Duration) {
        let store = &self.parts.store;
        match store
            .purge_finished_jobs(Timestamp::now().minus(retention))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "old job records deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot purge old job records"),
        }
        match store
            .purge_idempotency_keys(Timestamp::now().minus(IDEMPOTENCY_WINDOW))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "old idempotency keys deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot purge old idempotency keys"),
        }
        match store
            .purge_deliveries(Timestamp::now().minus(retention))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "old webhook deliveries deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot purge old webhook deliveries"),
        }
    }

    /// Publishes jobs whose record was written but whose message never was (a process died
    /// in between), then deletes expired uploads.
    pub async fn sweep(&self) {
        self.republish().await;
        self.purge_uploads().await;
    }

    /// Publishes the unpublished jobs older than a minute, then records them published.
    async fn republish(&self) {
        let (store, queue) = (&self.parts.store, &self.parts.queue);
        let jobs = match store
            .unpublished_jobs(Timestamp::now().minus(UNPUBLISHED_AFTER), BATCH)
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for unpublished jobs");
                return;
            }
        };
        for job in jobs {
            if let Err(e) = queue.push(&job.message()).await {
                tracing::warn!(error = %e, "cannot republish unpublished jobs now");
                return;
            }
            tracing::warn!(job_id = %job.id, "published a job its process never published");
            if let Err(e) = store.mark_published(job.id).await {
                tracing::warn!(job_id = %job.id, error = %e, "cannot mark a swept job");
            }
        }
    }

    /// Deletes expired uploads: their records, then their bytes (a blob left by a crash in
    /// between is only an unreferenced file).
    async fn purge_uploads(&self) {
        let (store, blobs) = (&self.parts.store, &self.parts.blobs);
        loop {
            let expired = match store.purge_expired_uploads(Timestamp::now(), BATCH).await {
                Ok(expired) => expired,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot purge expired uploads");
                    return;
                }
            };
            for upload in &expired {
                if let Err(e) = blobs.delete(&upload.blob_key).await {
                    tracing::warn!(blob = %upload.blob_key, error = %e, "cannot delete an expired upload");
                }
            }
            if !expired.is_empty() {
                tracing::info!(deleted = expired.len(), "expired uploads deleted");
            }
            if expired.len() < BATCH as usize {
                return;
            }
        }
    }
}
