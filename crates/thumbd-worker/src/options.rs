//! `WorkerOptions`: how much a worker does at once and how it retries.

use std::time::Duration;

use thumbcore::ThumbSpec;
use thumbd_fetch::FetchOptions;

use crate::WorkerMetrics;

/// How a [`Worker`](crate::Worker) behaves. `Default` is what `thumbd serve` uses.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Images decoded and resized at once: the image threads. Default: the number of cores.
    pub concurrency: usize,
    /// Jobs leased at once, at least `concurrency`. Jobs beyond `concurrency` read their
    /// original, store their result and settle their lease while others use the image
    /// threads, so no core waits on I/O. Default: twice `concurrency`.
    pub prefetch: usize,
    /// URL sources downloaded at once. A job whose source is a URL is in hand for as long
    /// as a remote server takes to answer, which says nothing about image work: it waits in
    /// one of these slots, not in one of the `prefetch` ones, so slow sources never keep
    /// image jobs from being leased. Default 16 (at most 16 × the input limit in memory).
    pub downloads: usize,
    /// Decoded pixels allowed in memory at once across all jobs (a 4-channel pixel is 4
    /// bytes, plus resize buffers). A job whose image would need more waits; one larger than
    /// the whole budget runs alone. Default 100 000 000 (two 50 MP PNGs, or many JPEGs, which
    /// are decoded at a reduced scale).
    pub pixel_budget: u64,
    /// Deliveries after which a message is dead-lettered and its job failed with
    /// `InternalError`: deliveries no worker settled (it died on the message, say an image
    /// that kills the process) or lost. A transient failure that a worker reports and
    /// retries (a backend down, a source not answering) never counts: such a job waits,
    /// with backoff, for as long as the backend takes to come back. Default 5.
    pub max_deliveries: u32,
    /// First retry delay; doubled for each further retry. Default 1 s.
    pub retry_base: Duration,
    /// Longest retry delay. Default 60 s.
    pub retry_max: Duration,
    /// How long one `lease` call waits for a message before the loop looks at shutdown
    /// again. Default 1 s.
    pub lease_wait: Duration,
    /// How often a running job renews its lease. Must be well under the queue's visibility
    /// timeout. Default 5 s.
    pub heartbeat: Duration,
    /// The thumbnail to make.
    pub spec: ThumbSpec,
    /// How URL sources are downloaded: the SSRF guard (`allow_private`), size, time and
    /// redirect limits. Default: private addresses refused, 5 MiB, 30 s, 5 redirects.
    pub fetch: FetchOptions,
    /// Where outcomes, processing times and bytes written are counted.
    pub metrics: WorkerMetrics,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        let concurrency = std::thread::available_parallelism().map_or(2, |n| n.get());
        WorkerOptions {
            concurrency,
            prefetch: 2 * concurrency,
            downloads: 16,
            pixel_budget: 100_000_000,
            max_deliveries: 5,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            lease_wait: Duration::from_secs(1),
            heartbeat: Duration::from_secs(5),
            spec: ThumbSpec::default(),
            fetch: FetchOptions::default(),
            metrics: WorkerMetrics::default(),
        }
    }
}

impl WorkerOptions {
    /// The delay before retry number `retry` (1 = first).
    pub fn backoff(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(16);
        self.retry_base
            .saturating_mul(1 << doublings)
            .min(self.retry_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let o = WorkerOptions::default();
        let secs: Vec<u64> = (1..=9).map(|d| o.backoff(d).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn downloads_are_capped_at_the_input_limit() {
        let o = WorkerOptions::default();
        assert_eq!(o.fetch.max_bytes, o.spec.limits.max_input_bytes);
    }
}
