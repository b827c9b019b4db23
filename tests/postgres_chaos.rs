//! PostgreSQL restarted under a running cluster (api + two workers) while clients keep
//! creating thumbnails. A restart is a transient fault: it may refuse requests (503, which
//! clients retry with the same `Idempotency-Key`), but it must never fail an accepted job
//! nor leave a request hanging.
//!
//! This test restarts the shared local PostgreSQL, so it lives in a test binary of its own
//! (`cargo test` runs binaries one at a time) and in the nextest group of every other test
//! that uses PostgreSQL (`.config/nextest.toml`).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/images.rs"]
mod images;

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use cluster::{Cluster, agent};
use images::png;

const JOBS: usize = 300;
const CLIENTS: usize = 4;
const RESTARTS: usize = 3;

/// `pg_ctlcluster VERSION main ACTION` for the one cluster installed here.
fn pg_ctl(action: &str) -> std::process::Output {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("a Debian PostgreSQL cluster")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a PostgreSQL version");
    Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", action])
        .output()
        .expect("pg_ctlcluster runs")
}

/// Starts PostgreSQL again however the test ends.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = pg_ctl("start");
    }
}

/// One create, retried on 503 (and on a connection error) with the same key until the API
/// accepts it. Returns the job id, the attempts, and the longest single request.
fn create_until_accepted(c: &Cluster, i: usize) -> (String, u32, Duration) {
    let key = format!("pg-chaos-{i}");
    let seed = u32::try_from(i).unwrap();
    let image = png(320 + (seed % 7) * 10, 240, seed);
    let (mut attempts, mut longest) = (0, Duration::ZERO);
    loop {
        attempts += 1;
        let started = Instant::now();
        let mut request = agent()
            .put(format!(
                "{}/v1/thumbnails/chaos-{i}?environment=development",
                c.api()
            ))
            .header("authorization", &format!("Bearer {}", c.token))
            .header("content-type", "image/png")
            .header("idempotency-key", &key);
        if i.is_multiple_of(2) {
            request = request.header("prefer", "respond-async");
        }
        let answer = request.send(&image[..]);
        longest = longest.max(started.elapsed());
        match answer {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let body: Value =
                    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                match status {
                    201 | 202 => {
                        return (body["id"].as_str().unwrap().to_owned(), attempts, longest);
                    }
                    503 => {}
                    other => panic!("create {i}: {other} {body}"),
                }
            }
            Err(e) => eprintln!("create {i}: {e}; retrying"),
        }
        assert!(attempts < 200, "create {i} never accepted");
        thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn postgres_restarting_while_jobs_flow_fails_no_accepted_job() {
    let Some(mut c) = Cluster::new("pgchaos") else {
        return;
    };
    c.start_api();
    c.start_worker();
    c.start_worker();
    let restore = Restore;
    let next = AtomicUsize::new(0);
    let accepted = Mutex::new(Vec::new());
    let (retried, longest) = (AtomicUsize::new(0), Mutex::new(Duration::ZERO));
    thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= JOBS {
                        break;
                    }
                    let (job, attempts, slowest) = create_until_accepted(&c, i);
                    if attempts > 1 {
                        retried.fetch_add(1, Ordering::SeqCst);
                    }
                    let mut l = longest.lock().unwrap();
                    *l = (*l).max(slowest);
                    accepted.lock().unwrap().push(job);
                }
            });
        }
        // Restarts spread over the run by progress, each while creates and jobs are in
        // flight.
        for k in 1..=RESTARTS {
            while next.load(Ordering::SeqCst) < JOBS * k / (RESTARTS + 1) {
                thread::sleep(Duration::from_millis(20));
            }
            let out = pg_ctl("restart");
            assert!(
                out.status.success(),
                "restart: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
    drop(restore);
    let accepted = accepted.into_inner().unwrap();
    assert_eq!(accepted.len(), JOBS);
    let longest = longest.into_inner().unwrap();
    assert!(
        longest < Duration::from_secs(30),
        "a request took {longest:?}"
    );
    let bodies = c.wait_all(&accepted, Duration::from_secs(240));
    let failed: Vec<&Value> = bodies
        .iter()
        .filter(|b| b["status"] != "succeeded")
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {JOBS} jobs did not succeed: {failed:?}\n{}",
        failed.len(),
        c.logs()
    );
    eprintln!(
        "postgres restarted {RESTARTS} times: {JOBS} jobs succeeded; {} creates were retried after a 503, the longest request took {longest:?}",
        retried.load(Ordering::SeqCst)
    );
    c.sigterm_all();
}
