//! `WorkerOptions`: how much a worker does at once and how it retries.

use std::time::Duration;

use thumbcore::{Profiles, ThumbSpec};
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
    /// Of those, how many one tenant may hold at once; its next URL source waits in the
    /// queue meanwhile. Default 8.
    pub downloads_per_tenant: usize,
    /// Decoding memory allowed at once across all jobs, in pixels of 4 bytes: the budget is
    /// `pixel_budget × 4` bytes, and each job is admitted by what thumbcore says decoding
    /// its image will hold ([`ThumbSpec::decode_cost`]: decoded pixels, a progressive
    /// JPEG's full-size coefficient buffers, a PNG's copies for resizing). A job that would
    /// need more than is free waits; one larger than the whole budget runs alone. Default
    /// 100 000 000 (400 MB: one 50 MP progressive 4:4:4 JPEG at 300 MB, one 50 MP RGB PNG
    /// at ~150 MB twice, many baseline JPEGs, which are decoded at a reduced scale).
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
    /// The thumbnail to make. Its `limits.max_duration` (`job_timeout`) is each job's time
    /// limit: thumbcore stops itself there with `ProcessingTimeout`; if it has not answered
    /// a few seconds later (a thread stuck where thumbcore cannot check the clock) the job
    /// fails `ProcessingTimeout` anyway and its image thread is left to finish, keeping its
    /// share of the budget until it does.
    pub spec: ThumbSpec,
    /// The profiles jobs name (`profile`), and the one a job naming none makes. The
    /// renditions say each image's box and format; `spec` the rest (limits, budget, resize
    /// space). Default: `default` = `330:png`.
    pub profiles: Profiles,
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
            downloads_per_tenant: 8,
            pixel_budget: 100_000_000,
            max_deliveries: 5,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            lease_wait: Duration::from_secs(1),
            heartbeat: Duration::from_secs(5),
            spec: ThumbSpec::default(),
            profiles: Profiles::default(),
            fetch: FetchOptions::default(),
            metrics: WorkerMetrics::default(),
        }
    }
}

impl WorkerOptions {
    /// Bytes of decoding memory one permit of the budget stands for: 1024 pixels of 4 bytes.
    const BYTES_PER_PERMIT: u64 = 4 * 1024;

    /// Permits in the whole decode budget (`pixel_budget × 4` bytes); semaphores count in
    /// `u32`, budgets reach billions of bytes.
    pub(crate) fn budget_permits(&self) -> u32 {
        u32::try_from((self.pixel_budget * 4).div_ceil(Self::BYTES_PER_PERMIT))
            .unwrap_or(u32::MAX >> 3)
            .clamp(1, u32::MAX >> 3)
    }

    /// Permits a job whose decoding holds `bytes` ([`ThumbSpec::decode_cost`]) takes: its
    /// cost, clamped to the whole budget (a job larger than the budget runs alone).
    pub(crate) fn job_permits(&self, bytes: u64) -> u32 {
        u32::try_from(bytes.div_ceil(Self::BYTES_PER_PERMIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.budget_permits())
    }

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
    fn the_budget_admits_by_decode_cost_not_by_output_pixels() {
        // A 2000×2000 progressive 4:4:4 JPEG: decoded at 1/2 it is 1000×1000 pixels, but
        // libjpeg holds 250 × 250 blocks × 3 components × 128 bytes = 24 MB of coefficients.
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend_from_slice(&[0xFF, 0xC2, 0, 17, 8, 0x07, 0xD0, 0x07, 0xD0, 3]);
        for c in 1..=3 {
            jpeg.extend_from_slice(&[c, 0x11, 0]);
        }
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0, 3, 0, 0, 0, 0]);
        let info = thumbcore::probe(&jpeg).unwrap();
        let o = WorkerOptions {
            // 4 M pixels: 16 MB, far more than the output, far less than the decode.
            pixel_budget: 4_000_000,
            ..WorkerOptions::default()
        };
        let cost = o.spec.decode_cost(&info);
        assert!(cost >= 250 * 250 * 3 * 128, "{cost}");
        assert!(o.spec.decoded_pixels(&info) * 4 < o.pixel_budget * 4 / 2);
        // Clamped to the whole budget: it runs alone, and two never run at once.
        assert_eq!(o.job_permits(cost), o.budget_permits());
        assert!(2 * o.job_permits(cost) > o.budget_permits());
        // A 400×300 baseline-sized decode takes a small share.
        assert!(o.job_permits(400 * 300 * 3) < o.budget_permits() / 8);
        // Units: the default budget is 400 MB.
        let bytes =
            u64::from(WorkerOptions::default().budget_permits()) * WorkerOptions::BYTES_PER_PERMIT;
        assert!((400_000_000..400_004_096).contains(&bytes), "{bytes}");
    }

    #[test]
    fn downloads_are_capped_at_the_input_limit() {
        let o = WorkerOptions::default();
        assert_eq!(o.fetch.max_bytes, o.spec.limits.max_input_bytes);
    }
}
