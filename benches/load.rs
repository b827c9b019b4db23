//! Load run against a real `thumbd serve` (release build, loopback, embedded backends).
//!
//! ```sh
//! cargo bench --bench load -- CORPUS   # any folder of PNG/JPEG files
//! ```
//!
//! Prints a Markdown table: thumbcore's own batch throughput on the folder (the ceiling),
//! the service's throughput and POST→succeeded latency, the latency of `Prefer:
//! respond-async` enqueues at a fixed 200 requests/s (open loop, measured from each request's
//! scheduled time, so a stall counts against us), and the server's peak RSS while 64 clients
//! upload 5 MB images at once.
//!
//! `THUMBD_LOAD_ONLY=progressive cargo bench --bench load` (no corpus needed) measures only
//! the server's peak RSS while 8 clients each upload a 49 MP progressive 4:4:4 JPEG (0.5 MB,
//! generated: libjpeg holds 294 MB of coefficients for each) at once, with 8 image threads
//! (`THUMBD_LOAD_WORKERS` overrides), so that only the decode budget keeps them apart.
//! `THUMBD_LOAD_PIXEL_BUDGET=N` sets the server's `pixel_budget` (e.g. 1000000000 to see
//! what the jobs hold when the budget does not hold them back).

#[path = "../crates/thumbcore/tests/common/hostile.rs"]
mod hostile;
#[path = "support/loadgen.rs"]
mod loadgen;
#[path = "../tests/support/serve_process.rs"]
mod serve_process;

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use loadgen::{agent, cpu_secs, noise_png, percentile};

struct Server {
    child: Child,
    base: String,
    token: String,
}

impl Server {
    fn start(data: &Path) -> Server {
        let p = serve_process::spawn(data, &[], "warn", Stdio::inherit());
        Server {
            child: p.child,
            base: p.base,
            token: p.token,
        }
    }

    /// CPU seconds (user + system) the server has used so far.
    fn cpu_secs(&self) -> f64 {
        cpu_secs(&format!("/proc/{}/stat", self.child.id()))
    }

    /// CPU seconds the server's image threads (`thumbd-image-N`) have used so far.
    fn image_cpu_secs(&self) -> f64 {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(tasks)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.starts_with("thumbd-image"))
            })
            .map(|t| cpu_secs(&t.path().join("stat").to_string_lossy()))
            .sum()
    }

    fn vm_hwm_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// One create; returns (HTTP status, seconds).
    fn post(
        &self,
        agent: &ureq::Agent,
        id: &str,
        image: &(Vec<u8>, &'static str),
        prefer: &str,
    ) -> (u16, f64) {
        loadgen::post(agent, &self.base, &self.token, id, image, prefer)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Peak RSS of `thumbd serve` while 8 clients upload a big progressive 4:4:4 JPEG each.
fn progressive_rss() {
    let workers = loadgen::env_number("THUMBD_LOAD_WORKERS", 8).to_string();
    let budget = format!(
        "pixel_budget={}",
        loadgen::env_number("THUMBD_LOAD_PIXEL_BUDGET", 100_000_000)
    );
    let jpeg = (hostile::progressive_444_jpeg(7000, 7000), "image/jpeg");
    assert!(jpeg.0.len() <= 5 * 1024 * 1024, "{}", jpeg.0.len());
    let tmp = tempfile::tempdir().unwrap();
    let p = serve_process::spawn(
        &tmp.path().join("data"),
        &["--workers", &workers, "--set", &budget],
        "warn",
        Stdio::inherit(),
    );
    let server = Server {
        child: p.child,
        base: p.base,
        token: p.token,
    };
    let idle_kib = server.vm_hwm_kib();
    let cpu0 = server.cpu_secs();
    let t = Instant::now();
    std::thread::scope(|s| {
        for i in 0..8 {
            let (server, jpeg) = (&server, &jpeg);
            s.spawn(move || {
                let (status, _) = server.post(&agent(), &format!("p{i}"), jpeg, "wait=120");
                assert_eq!(status, 201, "upload {i}");
            });
        }
    });
    let elapsed = t.elapsed().as_secs_f64();
    let peak_kib = server.vm_hwm_kib();
    println!(
        "| peak RSS, 8 concurrent {:.1} MB uploads of a 7000×7000 progressive 4:4:4 JPEG, {workers} image threads, {budget} | {:.0} MiB (idle {:.0} MiB); all 201 in {elapsed:.1} s, {:.1} s of server CPU |",
        jpeg.0.len() as f64 / 1e6,
        peak_kib as f64 / 1024.0,
        idle_kib as f64 / 1024.0,
        server.cpu_secs() - cpu0
    );
}

fn main() {
    if std::env::var("THUMBD_LOAD_ONLY").is_ok_and(|v| v == "progressive") {
        progressive_rss();
        return;
    }
    let Some(corpus) = loadgen::corpus_from_args("load") else {
        return;
    };
    // THUMBD_LOAD_ONLY=enqueue repeats just the enqueue measurement (it is the noisiest).
    let only_enqueue = std::env::var("THUMBD_LOAD_ONLY").is_ok_and(|v| v == "enqueue");
    // Rounds over the corpus for the throughput run (and each ceiling run): enough that a
    // run lasts several seconds on this machine. THUMBD_LOAD_ROUNDS overrides.
    let rounds = if only_enqueue { 0 } else { loadgen::rounds(20) };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "corpus: {} images, {rounds} rounds, {cores} cores",
        corpus.len()
    );

    // 1. The ceiling: thumbcore alone, rayon over all cores. Measured before and after the
    //    service run and averaged: this machine's speed drifts by minutes.
    //    Also returns the CPU seconds it used per image.
    //    `thumbcore::thumbnail_batch` over every round at once: one thumbnailer per thread,
    //    its buffers reused throughout, as the server's image threads reuse theirs.
    let batch = || {
        let spec = thumbcore::ThumbSpec::default();
        let inputs: Vec<&[u8]> = (0..rounds.max(1))
            .flat_map(|_| corpus.iter().map(|(b, _)| b.as_slice()))
            .collect();
        let cpu0 = cpu_secs("/proc/self/stat");
        let t = Instant::now();
        let ok = thumbcore::thumbnail_batch(&inputs, &spec)
            .iter()
            .filter(|r| r.is_ok())
            .count();
        assert_eq!(ok, inputs.len());
        let images = inputs.len() as f64;
        let cpu = cpu_secs("/proc/self/stat") - cpu0;
        (images / t.elapsed().as_secs_f64(), cpu / images)
    };
    let batch_before = batch();

    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("data"));

    // 2. Throughput and POST→succeeded latency: closed loop, 2 clients per core, `wait=60`
    //    so each response comes the moment its job is done.
    let clients = loadgen::env_number("THUMBD_LOAD_CLIENTS", 2 * cores);
    let total = rounds * corpus.len();
    let (server_cpu0, client_cpu0) = (server.cpu_secs(), cpu_secs("/proc/self/stat"));
    let image_cpu0 = server.image_cpu_secs();
    let (elapsed, latencies) =
        loadgen::closed_loop(&server.base, &server.token, &corpus, clients, total, "t");
    let service_rate = total as f64 / elapsed;
    let server_cpu = server.cpu_secs() - server_cpu0;
    let image_cpu = server.image_cpu_secs() - image_cpu0;
    let client_cpu = cpu_secs("/proc/self/stat") - client_cpu0;
    let batch_after = batch();
    let batch_rate = (batch_before.0 + batch_after.0) / 2.0;
    let batch_cpu = (batch_before.1 + batch_after.1) / 2.0;

    // 3. Unloaded latency: one client, one job at a time.
    let agent1 = agent();
    let mut single: Vec<f64> = (0..corpus.len() * usize::from(!only_enqueue))
        .map(|i| {
            server
                .post(&agent1, &format!("s{i}"), &corpus[i], "wait=60")
                .1
        })
        .collect();
    single.sort_by(f64::total_cmp);

    // 4. Enqueue latency at 200 requests/s, open loop, small image, respond-async.
    let small = (noise_png(120, 90), "image/png");
    let rate = 200.0;
    let count = 2000usize;
    let (tx, rx) = mpsc::channel::<(usize, Instant)>();
    let rx = std::sync::Mutex::new(rx);
    let start = Instant::now() + Duration::from_millis(100);
    let mut enqueue: Vec<f64> = std::thread::scope(|s| {
        let senders: Vec<_> = (0..32)
            .map(|_| {
                let (server, small, rx) = (&server, &small, &rx);
                s.spawn(move || {
                    let agent = agent();
                    let mut out = Vec::new();
                    loop {
                        let next = rx.lock().unwrap().recv();
                        let Ok((i, scheduled)) = next else { break };
                        let (status, _) =
                            server.post(&agent, &format!("q{i}"), small, "respond-async");
                        assert!(status == 202 || status == 201, "enqueue {i}: {status}");
                        out.push(scheduled.elapsed().as_secs_f64());
                    }
                    out
                })
            })
            .collect();
        for i in 0..count {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(d) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            tx.send((i, at)).unwrap();
        }
        drop(tx);
        senders
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    enqueue.sort_by(f64::total_cmp);
    if only_enqueue {
        let over = |ms: f64| enqueue.iter().filter(|&&s| s * 1000.0 > ms).count();
        println!(
            "enqueue p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; over 10 ms: {}, over 50 ms: {}",
            percentile(&enqueue, 50.0) * 1000.0,
            percentile(&enqueue, 99.0) * 1000.0,
            enqueue.last().unwrap() * 1000.0,
            over(10.0),
            over(50.0)
        );
        return;
    }
    drop(server); // its queue still holds the small jobs; a fresh server measures memory

    // 5. Peak RSS: 64 clients upload a 5 MB image each at once.
    let big = (noise_png(1290, 1290), "image/png");
    assert!(
        big.0.len() <= 5 * 1024 * 1024 && big.0.len() > 4_500_000,
        "{}",
        big.0.len()
    );
    let server = Server::start(&tmp.path().join("data-rss"));
    let idle_kib = server.vm_hwm_kib();
    std::thread::scope(|s| {
        for i in 0..64 {
            let (server, big) = (&server, &big);
            s.spawn(move || {
                let (status, _) = server.post(&agent(), &format!("m{i}"), big, "wait=120");
                assert_eq!(status, 201, "upload {i}");
            });
        }
    });
    let peak_kib = server.vm_hwm_kib();

    let ms = |s: f64| format!("{:.1} ms", s * 1000.0);
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| thumbcore batch (rayon, {cores} cores), mean of before and after | {batch_rate:.1} images/s |"
    );
    println!(
        "| `thumbd serve`, {clients} clients, `Prefer: wait` | {service_rate:.1} uploads/s ({:.0} % of thumbcore batch) |",
        100.0 * service_rate / batch_rate
    );
    println!(
        "| CPU during that run: server / load client / idle | {:.0} % / {:.0} % / {:.0} % of {cores} cores |",
        100.0 * server_cpu / elapsed / cores as f64,
        100.0 * client_cpu / elapsed / cores as f64,
        100.0 * (1.0 - (server_cpu + client_cpu) / elapsed / cores as f64)
    );
    println!(
        "| CPU per image: thumbcore batch / server (image threads + the rest) | {} / {} ({} + {}) |",
        ms(batch_cpu),
        ms(server_cpu / total as f64),
        ms(image_cpu / total as f64),
        ms((server_cpu - image_cpu) / total as f64)
    );
    println!(
        "| POST→succeeded at saturation, p50 / p99 | {} / {} |",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0))
    );
    println!(
        "| POST→succeeded, one client, p50 / p99 | {} / {} |",
        ms(percentile(&single, 50.0)),
        ms(percentile(&single, 99.0))
    );
    println!(
        "| `respond-async` enqueue at {rate:.0} req/s ({count} requests, {} B PNG), p50 / p99 / max | {} / {} / {} |",
        small.0.len(),
        ms(percentile(&enqueue, 50.0)),
        ms(percentile(&enqueue, 99.0)),
        ms(*enqueue.last().unwrap())
    );
    println!(
        "| peak RSS, 64 concurrent {:.1} MB uploads | {:.0} MiB (idle {:.0} MiB) |",
        big.0.len() as f64 / 1e6,
        peak_kib as f64 / 1024.0,
        idle_kib as f64 / 1024.0
    );
}
