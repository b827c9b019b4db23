//! thumbd-worker: turns queued jobs into stored thumbnails.
//!
//! [`Worker::process_one`] takes one [`Lease`](thumbd_jobs::Lease) from a
//! [`JobQueue`](thumbd_jobs::JobQueue) through to its end: it creates the job record if a
//! producer did not, skips jobs already finished (redeliveries), fetches the original from
//! the [`BlobStore`](thumbd_jobs::BlobStore) (the claim check), waits for room in a budget of
//! decoded pixels, runs thumbcore on its own low-priority image threads (a blocking pool of
//! `concurrency` threads; up to `prefetch` jobs are held so I/O overlaps image work) while
//! heartbeating the lease, writes the result blob, then the status, then acks. Image errors
//! finish the job `failed` with their stable code; backend errors retry with exponential
//! backoff for as long as the backend is down. A message workers die on (or lose) is
//! dead-lettered after [`WorkerOptions::max_deliveries`]. URL sources are downloaded in
//! slots of their own, a share per tenant.
//!
//! [`Worker::run`] is the loop `thumbd serve` and `thumbd worker` run, with graceful
//! shutdown; [`Worker::drain`] processes what is queued and returns (tests).
//!
//! [`Deliverer`] does the same for the queue's webhook lane: it posts each delivery to its
//! endpoint, signed, and retries it on the queue by a schedule (README, "Webhooks").

mod downloads;
mod metrics;
mod options;
mod outcome;
mod priority;
mod renditions;
mod webhooks;
mod worker;

pub use metrics::WorkerMetrics;
pub use options::WorkerOptions;
pub use outcome::Outcome;
pub use renditions::{RenditionLane, RenditionOutcome};
pub use webhooks::{Deliverer, DeliveryMetrics, DeliveryOptions, DeliveryOutcome};
pub use worker::{ReplyBody, Worker};
