//! The worker's Prometheus metrics: jobs by outcome and error code, processing time, and
//! thumbnail bytes written. Registered into the process's registry with
//! [`WorkerMetrics::register`]; the API exports it on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::Outcome;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
    code: String,
}

/// Counters and histograms a worker updates; clones share the same series. Unregistered
/// (the default) they still count, nobody exports them.
#[derive(Debug, Clone)]
pub struct WorkerMetrics {
    jobs: Family<OutcomeLabels, Counter>,
    processing: Histogram,
    written: Counter,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        WorkerMetrics {
            jobs: Family::default(),
            // 10 ms to 60 s: a thumbnail takes tens of milliseconds, a slow download seconds.
            processing: Histogram::new([
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            written: Counter::default(),
        }
    }
}

impl WorkerMetrics {
    /// Adds these metrics to `registry` (names get its prefix, `thumbd_` in thumbd).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "jobs_processed",
            "Deliveries processed, by outcome (succeeded, failed, skipped, retried, dead_lettered, lease_lost) and error code",
            self.jobs.clone(),
        );
        registry.register(
            "job_processing_seconds",
            "Time from lease to settlement of one delivery (fetch, decode, resize, encode, store)",
            self.processing.clone(),
        );
        registry.register(
            "thumbnail_bytes",
            "Thumbnail bytes written to the blob store",
            self.written.clone(),
        );
    }

    /// Records one processed delivery.
    pub(crate) fn processed(&self, outcome: &Outcome, seconds: f64) {
        let (outcome, code) = match outcome {
            Outcome::Succeeded { .. } => ("succeeded", String::new()),
            Outcome::Failed { code, .. } => ("failed", code.as_str().to_owned()),
            Outcome::Skipped { .. } => ("skipped", String::new()),
            Outcome::Retried { .. } => ("retried", String::new()),
            Outcome::DeadLettered { .. } => ("dead_lettered", String::new()),
            Outcome::LeaseLost { .. } => ("lease_lost", String::new()),
        };
        self.jobs
            .get_or_create(&OutcomeLabels { outcome, code })
            .inc();
        self.processing.observe(seconds);
    }

    /// Counts thumbnail bytes stored.
    pub(crate) fn written(&self, bytes: usize) {
        self.written.inc_by(bytes as u64);
    }
}
