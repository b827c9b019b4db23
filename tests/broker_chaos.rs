//! The broker misbehaving under a running cluster: its application stopped and started
//! while jobs flow, and a memory alarm that blocks publishers. These tests change the
//! shared local RabbitMQ, so they live in a test binary of their own (`cargo test` runs
//! binaries one at a time), take a lock against each other, and run in the nextest group
//! `shared-services` (`.config/nextest.toml`) with every other test that uses the broker.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/images.rs"]
mod images;

use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use cluster::{Cluster, agent};
use images::png;

static BROKER: Mutex<()> = Mutex::new(());

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Puts the broker back however the test ends.
struct Restore(&'static [&'static str]);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").args(self.0).output();
    }
}

/// POSTs with `respond-async`; returns (HTTP status, body, seconds).
fn submit(c: &Cluster, id: &str, image: &[u8]) -> (u16, Value, f64) {
    let t = Instant::now();
    let mut r = agent()
        .put(format!(
            "{}/v1/thumbnails/{id}?environment=development",
            c.api()
        ))
        .header("authorization", &format!("Bearer {}", c.token))
        .header("content-type", "image/png")
        .header("prefer", "respond-async")
        .send(image)
        .unwrap();
    let status = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").is_some();
    let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    if status == 503 {
        assert!(retry_after, "503 without Retry-After: {body}");
    }
    (status, body, t.elapsed().as_secs_f64())
}

#[test]
fn a_blocked_broker_makes_creates_answer_503_not_hang() {
    let _broker = BROKER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut c) = Cluster::new("blocked") else {
        return;
    };
    c.start_api();
    let (status, _, _) = submit(&c, "before", &png(300, 200, 1));
    assert_eq!(status, 202);

    // A memory high watermark of 0 raises the memory alarm at once: the broker blocks
    // every publishing connection.
    let restore = Restore(&["set_vm_memory_high_watermark", "0.4"]);
    rabbitmqctl(&["set_vm_memory_high_watermark", "0"]);
    thread::sleep(Duration::from_millis(500));
    let (status, body, secs) = submit(&c, "during", &png(300, 200, 2));
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "ServiceUnavailable", "{body}");
    assert!(secs < 15.0, "answered after {secs:.1} s");
    drop(restore);

    thread::sleep(Duration::from_millis(500));
    let (status, body, _) = submit(&c, "after", &png(300, 200, 3));
    assert_eq!(status, 202, "{body}");
    c.start_worker();
    let job = body["id"].as_str().unwrap().to_owned();
    let done = c.wait_all(&[job], Duration::from_secs(60));
    assert_eq!(done[0]["status"], "succeeded");
    c.sigterm_all();
}

#[test]
fn the_broker_restarting_while_jobs_flow_loses_no_accepted_job() {
    let _broker = BROKER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut c) = Cluster::new("restart") else {
        return;
    };
    c.start_api();
    c.start_worker();
    let restore = Restore(&["start_app"]);
    let (accepted, refused) = thread::scope(|s| {
        let producer = s.spawn(|| {
            let (mut accepted, mut refused) = (Vec::new(), 0);
            for i in 0..60 {
                let (status, body, _) = submit(&c, &format!("flow-{i}"), &png(500, 400, i));
                match status {
                    202 => accepted.push(body["id"].as_str().unwrap().to_owned()),
                    503 => refused += 1,
                    other => panic!("{other}: {body}"),
                }
                thread::sleep(Duration::from_millis(100));
            }
            (accepted, refused)
        });
        thread::sleep(Duration::from_secs(2));
        rabbitmqctl(&["stop_app"]);
        thread::sleep(Duration::from_secs(2));
        rabbitmqctl(&["start_app"]);
        producer.join().unwrap()
    });
    drop(restore);
    assert!(accepted.len() >= 20, "{} accepted", accepted.len());
    let bodies = c.wait_all(&accepted, Duration::from_secs(120));
    for b in &bodies {
        assert_eq!(b["status"], "succeeded", "{b}");
    }
    eprintln!(
        "broker restart: {} accepted and succeeded, {refused} refused with 503 while it was down",
        accepted.len()
    );
    c.sigterm_all();
}
