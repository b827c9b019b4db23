//! The distributed mode against the embedded one, on the same corpus and the same cores:
//! `thumbd serve` (2 image threads) vs `thumbd api` + one `thumbd worker` (2 image threads)
//! vs `thumbd api` + two `thumbd worker`s (1 each), all on loopback with the local RabbitMQ and
//! PostgreSQL; plus the latency of a confirmed publish and what the broker and the database
//! cost per job (their CPU time during the run).
//!
//! ```sh
//! cargo bench --bench distributed -- ../shared/corpus
//! ```

#[path = "../tests/support/cluster.rs"]
mod cluster;
#[path = "support/loadgen.rs"]
mod loadgen;
#[path = "../tests/support/serve_process.rs"]
mod serve_process;

use std::process::Stdio;
use std::time::Instant;

use cluster::Cluster;
use loadgen::{closed_loop, cpu_secs, percentile};
use thumbd_amqp::{AmqpJobQueue, AmqpOptions};
use thumbd_jobs::{Environment, JobMessage, JobQueue as _, JobSource, ThumbnailId};

/// The numeric entries of /proc: every process's directory.
fn processes() -> impl Iterator<Item = std::path::PathBuf> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .map(|e| e.path())
}

/// CPU seconds used so far by every process whose name starts with one of `names`.
fn cpu_of(names: &[&str]) -> f64 {
    processes()
        .filter(|p| {
            std::fs::read_to_string(p.join("comm"))
                .is_ok_and(|c| names.iter().any(|n| c.trim_end().starts_with(n)))
        })
        .map(|p| cpu_secs(&p.join("stat").to_string_lossy()))
        .sum()
}

/// CPU seconds used so far by the thumbd processes started as `thumbd ROLE` (`serve`, `api`,
/// `worker`).
fn cpu_of_thumbd(role: &str) -> f64 {
    processes()
        .filter(|p| {
            std::fs::read(p.join("cmdline")).is_ok_and(|c| {
                let mut args = c.split(|&b| b == 0);
                args.next().is_some_and(|exe| exe.ends_with(b"thumbd"))
                    && args.next() == Some(role.as_bytes())
            })
        })
        .map(|p| cpu_secs(&p.join("stat").to_string_lossy()))
        .sum()
}

/// Result of one configuration.
struct Run {
    name: String,
    rate: f64,
    latencies: Vec<f64>,
    broker_ms_per_job: f64,
    db_ms_per_job: f64,
    /// The thumbd processes' own: `serve`, or `api` and the workers.
    thumbd_ms_per_job: f64,
    /// Of which the `api` process's (zero for `serve`).
    api_ms_per_job: f64,
}

fn measure(
    name: &str,
    base: &str,
    token: &str,
    corpus: &[(Vec<u8>, &'static str)],
    total: usize,
) -> Run {
    let (broker0, db0) = (cpu_of(&["beam.smp"]), cpu_of(&["postgres"]));
    let thumbd0 = cpu_of(&["thumbd"]);
    let api0 = cpu_of_thumbd("api");
    let clients = loadgen::env_number("THUMBD_LOAD_CLIENTS", 4);
    let (elapsed, latencies) = closed_loop(base, token, corpus, clients, total, "d");
    let per_job = |secs: f64| 1000.0 * secs / total as f64;
    Run {
        name: name.into(),
        rate: total as f64 / elapsed,
        latencies,
        broker_ms_per_job: per_job(cpu_of(&["beam.smp"]) - broker0),
        db_ms_per_job: per_job(cpu_of(&["postgres"]) - db0),
        thumbd_ms_per_job: per_job(cpu_of(&["thumbd"]) - thumbd0),
        api_ms_per_job: per_job(cpu_of_thumbd("api") - api0),
    }
}

fn main() {
    let Some(corpus) = loadgen::corpus_from_args("distributed") else {
        return;
    };
    let rounds = loadgen::rounds(10);
    let total = rounds * corpus.len();
    println!(
        "corpus: {} images, {rounds} rounds = {total} uploads per run, {} clients",
        corpus.len(),
        loadgen::env_number("THUMBD_LOAD_CLIENTS", 4)
    );
    let mut runs = Vec::new();
    // Each set-up's files are deleted only when the bench ends: on ext4 without a journal
    // (this machine's), a file created within ~30 s of many deletions nearby scans past every
    // inode freed (`recently_deleted`), which would slow the set-up after it.
    let mut spent = Vec::new();

    // Embedded, before and after the distributed runs (this machine's speed drifts): the
    // reference is their mean.
    let embedded = |label: &str, spent: &mut Vec<tempfile::TempDir>| {
        let tmp = tempfile::tempdir().unwrap();
        let serve = serve_process::spawn(
            &tmp.path().join("data"),
            &["--workers", "2"],
            "warn",
            Stdio::inherit(),
        );
        let mut child = serve.child;
        let run = measure(label, &serve.base, &serve.token, &corpus, total);
        let _ = child.kill();
        let _ = child.wait();
        spent.push(tmp);
        run
    };
    runs.push(embedded(
        "`thumbd serve` (embedded), 2 image threads, before",
        &mut spent,
    ));

    // RabbitMQ + PostgreSQL: one worker with 2 threads, then two with 1 each.
    for (name, workers) in [
        (
            "`thumbd api` + 1 worker × 2 threads (RabbitMQ, PostgreSQL)",
            &[2][..],
        ),
        (
            "`thumbd api` + 2 workers × 1 thread (RabbitMQ, PostgreSQL)",
            &[1, 1][..],
        ),
    ] {
        let Some(mut c) = Cluster::new("bench") else {
            eprintln!("RabbitMQ or PostgreSQL missing: the distributed runs are skipped");
            break;
        };
        // Like `serve`, whose API and workers share one async thread: every process here
        // shares the same 2 cores with the image threads (`api` alone defaults to one
        // async thread per core, for a machine of its own).
        c.env.push(("THUMBD_ASYNC_THREADS".into(), "1".into()));
        c.start_api();
        for (i, w) in workers.iter().enumerate() {
            let p = c.spawn_with("worker", &format!("worker-{i}"), *w);
            c.workers.push(p);
        }
        let run = measure(name, c.api(), &c.token.clone(), &corpus, total);
        runs.push(run);
        c.sigterm_all();
        spent.push(std::mem::replace(&mut c.dir, tempfile::tempdir().unwrap()));
    }

    runs.push(embedded(
        "`thumbd serve` (embedded), 2 image threads, after",
        &mut spent,
    ));

    // Publish-confirm latency: one publisher, one message at a time.
    let confirms = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let queue = AmqpJobQueue::new(
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                AmqpOptions {
                    namespace: format!("thumbd-bench-{}", std::process::id()),
                    ..AmqpOptions::default()
                },
            )
            .unwrap();
            if queue.connect().await.is_err() {
                return Vec::new();
            }
            let message = JobMessage {
                job_id: None,
                environment: Environment::Development,
                thumbnail_id: ThumbnailId::parse("bench").unwrap(),
                source: JobSource::Url {
                    url: "https://example.invalid/x.png".into(),
                },
                reply_to: None,
            };
            let mut out = Vec::new();
            for _ in 0..2000 {
                let t = Instant::now();
                queue.push(&message).await.unwrap();
                out.push(t.elapsed().as_secs_f64());
            }
            queue.delete_topology().await.unwrap();
            out.sort_by(f64::total_cmp);
            out
        })
    };

    let ms = |s: f64| format!("{:.1} ms", s * 1000.0);
    let embedded = (runs[0].rate + runs[runs.len() - 1].rate) / 2.0;
    println!();
    println!(
        "| configuration | uploads/s | vs embedded (mean of before and after) | POST→succeeded p50 / p99 | thumbd CPU / job (of which `api`) | broker CPU / job | PostgreSQL CPU / job |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {:.1} | {:.0} % | {} / {} | {:.1} ms ({:.1} ms) | {:.2} ms | {:.2} ms |",
            r.name,
            r.rate,
            100.0 * r.rate / embedded,
            ms(percentile(&r.latencies, 50.0)),
            ms(percentile(&r.latencies, 99.0)),
            r.thumbd_ms_per_job,
            r.api_ms_per_job,
            r.broker_ms_per_job,
            r.db_ms_per_job
        );
    }
    if !confirms.is_empty() {
        println!(
            "| publish + confirm, {} sequential 0.1 KB messages | p50 {} / p99 {} / max {} | | | | | |",
            confirms.len(),
            ms(percentile(&confirms, 50.0)),
            ms(percentile(&confirms, 99.0)),
            ms(*confirms.last().unwrap())
        );
    }
}
