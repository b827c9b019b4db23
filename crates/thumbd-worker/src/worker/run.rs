//! The worker's loop: leases up to `prefetch` deliveries at once and processes each,
//! trading a URL source's slot for a download slot.

use std::sync::Arc;

use thumbd_jobs::{JobId, JobMessage, JobSource, Lease, Tenant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{DOWNLOAD_DEFER, Worker};
use crate::outcome::Outcome;

impl Worker {
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
    pub(super) async fn defer(&self, lease: Lease, tenant: &Tenant) -> Outcome {
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
}

/// The tenant of a delivery whose job downloads its source (a malformed payload does not).
fn url_source_tenant(lease: &Lease) -> Option<Tenant> {
    JobMessage::parse(&lease.payload)
        .ok()
        .filter(|m| matches!(m.source, JobSource::Url { .. }))
        .map(|m| m.tenant)
}
