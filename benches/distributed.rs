//! The distributed mode against the embedded one, on the same corpus and the same cores:
//! `thumbd serve` (2 image threads) vs `thumbd api` + one `thumbd worker` (2 image threads)
//! vs `thumbd api` + two `thumbd worker`s (1 each), all on loopback with the local RabbitMQ and
//! PostgreSQL; plus the latency of a confirmed publish and what the broker and the database
//! cost per job (their CPU time during the run). The three set-ups run side by side and take
//! turns (five rounds of the corpus each), so the machine's drift falls on all of them.
//!
//! ```sh
//! cargo bench --bench distributed -- CORPUS   # any folder of PNG/JPEG files
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

/// CPU seconds used so far by each process whose name starts with one of `names`.
fn cpu_of(names: &[&str]) -> std::collections::HashMap<std::path::PathBuf, f64> {
    processes()
        .filter(|p| {
            std::fs::read_to_string(p.join("comm"))
                .is_ok_and(|c| names.iter().any(|n| c.trim_end().starts_with(n)))
        })
        .map(|p| {
            let secs = cpu_secs(&p.join("stat").to_string_lossy());
            (p, secs)
        })
        .collect()
}

/// CPU seconds the processes named `names` used since `before` (`cpu_of`): those started
/// since count whole; those ended since are left out (their time is gone from /proc) —
/// a `rabbitmqctl` run by someone else, say, which would otherwise count negative.
fn cpu_since(names: &[&str], before: &std::collections::HashMap<std::path::PathBuf, f64>) -> f64 {
    cpu_of(names)
        .into_iter()
        .map(|(p, secs)| secs - before.get(&p).copied().unwrap_or(0.0))
        .sum()
}

/// CPU seconds used so far by the processes `pids`.
fn cpu_of_pids(pids: &[u32]) -> f64 {
    pids.iter()
        .map(|pid| cpu_secs(&format!("/proc/{pid}/stat")))
        .sum()
}

/// One set-up under test, and what its segments added up to.
#[derive(Default)]
struct Setup {
    name: String,
    base: String,
    token: String,
    /// Its thumbd processes: `serve`, or `api` first and then the workers.
    pids: Vec<u32>,
    jobs: usize,
    secs: f64,
    latencies: Vec<f64>,
    broker_secs: f64,
    db_secs: f64,
    thumbd_secs: f64,
    api_secs: f64,
}

impl Setup {
    fn new(name: &str, base: &str, token: &str, pids: Vec<u32>) -> Self {
        Setup {
            name: name.into(),
            base: base.into(),
            token: token.into(),
            pids,
            ..Setup::default()
        }
    }

    /// The `api` process, if the set-up has one (none for `serve`).
    fn api_pids(&self) -> &[u32] {
        if self.pids.len() > 1 {
            &self.pids[..1]
        } else {
            &[]
        }
    }

    /// Sends `total` uploads through this set-up (the others idle meanwhile), adding up the
    /// time, the latencies and the CPU it took.
    fn segment(
        &mut self,
        corpus: &[(Vec<u8>, &'static str)],
        clients: usize,
        total: usize,
        prefix: &str,
    ) {
        let (broker0, db0) = (cpu_of(&["beam.smp"]), cpu_of(&["postgres"]));
        let (thumbd0, api0) = (cpu_of_pids(&self.pids), cpu_of_pids(self.api_pids()));
        let (elapsed, latencies) =
            closed_loop(&self.base, &self.token, corpus, clients, total, prefix);
        self.jobs += total;
        self.secs += elapsed;
        self.latencies.extend(latencies);
        self.broker_secs += cpu_since(&["beam.smp"], &broker0);
        self.db_secs += cpu_since(&["postgres"], &db0);
        self.thumbd_secs += cpu_of_pids(&self.pids) - thumbd0;
        self.api_secs += cpu_of_pids(self.api_pids()) - api0;
    }

    fn rate(&self) -> f64 {
        self.jobs as f64 / self.secs
    }

    fn ms_per_job(&self, secs: f64) -> f64 {
        1000.0 * secs / self.jobs as f64
    }
}

fn main() {
    let Some(corpus) = loadgen::corpus_from_args("distributed") else {
        return;
    };
    let rounds = loadgen::rounds(10);
    let total = rounds * corpus.len();
    // This machine's speed drifts by several per cent within a minute: the set-ups run side
    // by side and take turns, a few rounds each, so every one sees the same drift.
    let per_turn = 5.min(rounds);
    let turns = rounds.div_ceil(per_turn);
    let clients = loadgen::env_number("THUMBD_LOAD_CLIENTS", 4);
    println!(
        "corpus: {} images, {rounds} rounds = {total} uploads per set-up, in {turns} turns; {clients} clients",
        corpus.len(),
    );

    let tmp = tempfile::tempdir().unwrap();
    let serve = serve_process::spawn(
        &tmp.path().join("data"),
        &["--workers", "2"],
        "warn",
        Stdio::inherit(),
    );
    let mut serve_child = serve.child;
    let mut setups = vec![Setup::new(
        "`thumbd serve` (embedded), 2 image threads",
        &serve.base,
        &serve.token,
        vec![serve_child.id()],
    )];

    // RabbitMQ + PostgreSQL: one worker with 2 threads, and two with 1 each.
    let mut clusters = Vec::new();
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
        let Some(mut c) = Cluster::new(&format!("bench{}", clusters.len())) else {
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
        let pids = c
            .api
            .iter()
            .chain(&c.workers)
            .map(|p| p.child.id())
            .collect();
        setups.push(Setup::new(name, c.api(), &c.token, pids));
        clusters.push(c);
    }

    for turn in 0..turns {
        let uploads = per_turn.min(rounds - turn * per_turn) * corpus.len();
        for s in &mut setups {
            s.segment(&corpus, clients, uploads, &format!("t{turn}-"));
        }
    }
    let _ = serve_child.kill();
    let _ = serve_child.wait();
    for c in &mut clusters {
        c.sigterm_all();
    }
    drop(clusters);

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
                tenant: thumbd_jobs::Tenant::default(),
                job_id: None,
                environment: Environment::Development,
                thumbnail_id: ThumbnailId::parse("bench").unwrap(),
                source: JobSource::Url {
                    url: "https://example.invalid/x.png".into(),
                },
                reply_to: None,
                profile: None,
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
    let embedded = setups[0].rate();
    println!();
    println!(
        "| configuration | uploads/s | vs embedded | POST→succeeded p50 / p99 | thumbd CPU / job (of which `api`) | broker CPU / job | PostgreSQL CPU / job |"
    );
    println!("|---|---|---|---|---|---|---|");
    for s in &mut setups {
        s.latencies.sort_by(f64::total_cmp);
        println!(
            "| {} | {:.1} | {:.0} % | {} / {} | {:.1} ms ({:.1} ms) | {:.2} ms | {:.2} ms |",
            s.name,
            s.rate(),
            100.0 * s.rate() / embedded,
            ms(percentile(&s.latencies, 50.0)),
            ms(percentile(&s.latencies, 99.0)),
            s.ms_per_job(s.thumbd_secs),
            s.ms_per_job(s.api_secs),
            s.ms_per_job(s.broker_secs),
            s.ms_per_job(s.db_secs)
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
