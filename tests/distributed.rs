//! Distributed mode as operators run it: `thumbd api` and `thumbd worker` processes sharing
//! RabbitMQ, PostgreSQL and a blob directory, all on loopback. Each test has its own AMQP
//! namespace (exchange and queues), PostgreSQL schema and directory, removed at the end.
//! Without RabbitMQ or PostgreSQL the tests say SKIP (or fail with THUMBD_REQUIRE_SERVICES=1).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt as _;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;
use thumbd_amqp::{AmqpJobQueue, AmqpOptions, ROUTING_KEY};
use thumbd_jobs::{JobQueue as _, services};
use thumbd_postgres::TestSchema;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const SECRET: &str = "distributed-test-secret-0123456789abcdef";

/// A namespace, a schema and a directory, and the processes started on them.
struct Cluster {
    rt: tokio::runtime::Runtime,
    amqp_url: String,
    namespace: String,
    schema: Option<TestSchema>,
    dir: tempfile::TempDir,
    api: Option<Proc>,
    workers: Vec<Proc>,
    token: String,
}

/// A spawned `thumbd api` or `thumbd worker`.
struct Proc {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Cluster {
    /// `None` (SKIP) when RabbitMQ or PostgreSQL is not there.
    fn new(test: &str) -> Option<Cluster> {
        let amqp_url = services::service_url("THUMBD_TEST_AMQP_URL", AMQP, test)?;
        let pg_url = services::service_url("THUMBD_TEST_DATABASE_URL", PG, test)?;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let schema = rt
            .block_on(TestSchema::create(&pg_url))
            .expect("test schema");
        let namespace = format!("thumbd-test-{test}-{}", std::process::id());
        let token = {
            let out = Command::new(env!("CARGO_BIN_EXE_thumbd"))
                .args([
                    "token",
                    "--scope",
                    "thumbnails:write",
                    "--scope",
                    "thumbnails:read",
                ])
                .env("THUMBD_JWT_SECRET", SECRET)
                .output()
                .unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        Some(Cluster {
            rt,
            amqp_url,
            namespace,
            schema: Some(schema),
            dir: tempfile::tempdir().unwrap(),
            api: None,
            workers: Vec::new(),
            token,
        })
    }

    fn spawn(&self, role: &str, name: &str) -> Proc {
        let log = self.dir.path().join(format!("{name}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_thumbd"))
            .args([role, "--listen", "127.0.0.1:0", "--workers", "1"])
            .env("THUMBD_AMQP_URL", &self.amqp_url)
            .env("THUMBD_AMQP_NAMESPACE", &self.namespace)
            .env("THUMBD_DATABASE_URL", self.schema.as_ref().unwrap().url())
            .env(
                "THUMBD_STORAGE_URL",
                format!("file://{}", self.dir.path().join("blobs").display()),
            )
            .env("THUMBD_DATA_DIR", self.dir.path().join(name))
            .env("THUMBD_JWT_SECRET", SECRET)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("thumbd starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| {
                    panic!(
                        "{name} exited: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                })
                .unwrap();
            if let Some(at) = line.find("http://") {
                let url = line[at..].split_whitespace().next().unwrap();
                break url.trim_end_matches("/healthz").to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Proc { child, base, log }
    }

    fn start_api(&mut self) {
        self.api = Some(self.spawn("api", "api"));
    }

    fn start_worker(&mut self) {
        let name = format!("worker-{}", self.workers.len() + 1);
        let worker = self.spawn("worker", &name);
        self.workers.push(worker);
    }

    fn api(&self) -> &str {
        &self.api.as_ref().expect("api started").base
    }

    fn queue(&self) -> AmqpJobQueue {
        AmqpJobQueue::new(
            &self.amqp_url,
            AmqpOptions {
                namespace: self.namespace.clone(),
                ..AmqpOptions::default()
            },
        )
        .unwrap()
    }

    fn submit(&self, id: &str, image: &[u8]) -> String {
        let mut r = agent()
            .put(format!(
                "{}/v1/thumbnails/{id}?environment=development",
                self.api()
            ))
            .header("authorization", &format!("Bearer {}", self.token))
            .header("content-type", "image/png")
            .header("prefer", "respond-async")
            .send(image)
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "{id}");
        let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    fn status(&self, job: &str) -> Value {
        let mut r = agent()
            .get(format!("{}/v1/status/{job}", self.api()))
            .header("authorization", &format!("Bearer {}", self.token))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "status of {job}");
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// Polls every job until all are finished; returns their final status bodies.
    fn wait_all(&self, jobs: &[String], within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let bodies: Vec<Value> = jobs.iter().map(|j| self.status(j)).collect();
            if bodies
                .iter()
                .all(|b| b["status"] == "succeeded" || b["status"] == "failed")
            {
                return bodies;
            }
            assert!(
                Instant::now() < deadline,
                "jobs unfinished after {within:?}: {:?}\n{}",
                bodies.iter().map(|b| &b["status"]).collect::<Vec<_>>(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn logs(&self) -> String {
        self.api
            .iter()
            .chain(&self.workers)
            .map(|p| format!("--- {}\n{}", p.log.display(), p.log()))
            .collect()
    }

    fn sigterm_all(&mut self) {
        for p in self.api.iter_mut().chain(self.workers.iter_mut()) {
            let _ = Command::new("kill").arg(p.child.id().to_string()).status();
        }
        for p in self.api.iter_mut().chain(self.workers.iter_mut()) {
            let status = p.child.wait().unwrap();
            assert!(status.success(), "{} exited with {status}", p.log.display());
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for p in self.api.iter_mut().chain(self.workers.iter_mut()) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        let queue = self.queue();
        let schema = self.schema.take();
        self.rt.block_on(async {
            let _ = queue.delete_topology().await;
            if let Some(schema) = schema {
                let _ = schema.remove().await;
            }
        });
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    let data: Vec<u8> = (0..w * h * 3)
        .map(|i| u8::try_from((i.wrapping_mul(seed + 7) >> 3) % 256).unwrap())
        .collect();
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    out
}

fn thumbnail_files(dir: &Path) -> usize {
    walk(&dir.join("blobs").join("thumbnails"))
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    walk(&p)
                } else {
                    usize::from(!e.file_name().to_string_lossy().starts_with('.'))
                }
            })
            .sum()
    })
}

#[test]
fn an_api_and_two_workers_share_the_load() {
    let Some(mut c) = Cluster::new("share") else {
        return;
    };
    c.start_api();
    c.start_worker();
    c.start_worker();
    let jobs: Vec<String> = (0..16)
        .map(|i| c.submit(&format!("share-{i}"), &png(700 + i, 500, i)))
        .collect();
    let bodies = c.wait_all(&jobs, Duration::from_secs(90));
    for b in &bodies {
        assert_eq!(b["status"], "succeeded", "{b}");
    }
    let mut r = agent()
        .get(format!(
            "{}/v1/thumbnails/share-3?environment=development",
            c.api()
        ))
        .header("authorization", &format!("Bearer {}", c.token))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.body_mut().read_to_vec().unwrap().starts_with(b"\x89PNG"));
    for w in &c.workers {
        let done = w.log().matches("job succeeded").count();
        assert!(done >= 1, "{} did no job:\n{}", w.log.display(), c.logs());
    }
    assert_eq!(thumbnail_files(c.dir.path()), 16);
    c.sigterm_all();
}

#[test]
fn a_worker_killed_mid_job_loses_nothing_and_finishes_each_job_once() {
    let Some(mut c) = Cluster::new("kill") else {
        return;
    };
    c.start_api();
    c.start_worker();
    let jobs: Vec<String> = (0..6)
        .map(|i| c.submit(&format!("kill-{i}"), &png(2600, 2000, i)))
        .collect();
    // Kill the only worker while it is processing.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !jobs.iter().any(|j| c.status(j)["status"] == "processing") {
        assert!(Instant::now() < deadline, "nothing started:\n{}", c.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut killed = c.workers.remove(0);
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    c.start_worker();
    let bodies = c.wait_all(&jobs, Duration::from_secs(120));
    for b in &bodies {
        assert_eq!(b["status"], "succeeded", "{b}");
    }
    assert!(
        bodies.iter().any(|b| b["attempts"].as_u64() >= Some(2)),
        "the killed job ran again: {bodies:?}"
    );
    assert_eq!(
        thumbnail_files(c.dir.path()),
        jobs.len(),
        "one stored thumbnail per job"
    );
    let depth = c.rt.block_on(c.queue().depth()).unwrap();
    assert_eq!((depth.ready, depth.dead), (0, 0), "{depth:?}");
    c.sigterm_all();
}

#[test]
fn producers_publish_straight_to_the_exchange() {
    let Some(mut c) = Cluster::new("producer") else {
        return;
    };
    c.start_api();
    c.start_worker();
    let job = "0192e4a0-0000-7000-8000-00000000beef";
    let (reply, dead_reason) = c.rt.block_on(async {
        let conn = Connection::connect(&c.amqp_url, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let replies = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let reply_to = replies.name().to_string();
        let mut consumer = ch
            .basic_consume(
                reply_to.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let publish = async |body: Vec<u8>| {
            ch.basic_publish(
                c.namespace.as_str().into(),
                ROUTING_KEY.into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        };
        // A well-formed message with an inline image and a reply queue…
        let message = serde_json::json!({
            "jobId": job,
            "environment": "production",
            "thumbnailId": "from-a-producer",
            "source": {
                "inline": base64::engine::general_purpose::STANDARD.encode(png(300, 200, 1)),
                "contentType": "image/png"
            },
            "replyTo": reply_to,
        });
        publish(serde_json::to_vec(&message).unwrap()).await;
        // …and a malformed one.
        publish(b"{\"thumbnailId\": 42".to_vec()).await;

        let reply = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .expect("a reply within 30 s")
            .unwrap()
            .unwrap();
        let reply: Value = serde_json::from_slice(&reply.data).unwrap();

        let dead = format!("{}.dead", c.namespace);
        let deadline = Instant::now() + Duration::from_secs(30);
        let dead_letter = loop {
            if let Some(m) = ch
                .basic_get(dead.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                break m;
            }
            assert!(Instant::now() < deadline, "nothing dead-lettered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let reason = dead_letter
            .delivery
            .properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get("x-thumbd-reason").cloned());
        let _ = conn.close(200, "done".into()).await;
        (reply, reason)
    });
    assert_eq!(reply["id"], job);
    assert_eq!(reply["status"], "succeeded", "{reply}");
    assert_eq!(reply["thumbnailId"], "from-a-producer");
    match dead_reason {
        Some(AMQPValue::LongString(s)) => {
            assert!(s.to_string().contains("malformed"), "{s}");
        }
        other => panic!("no reason header: {other:?}"),
    }
    // The producer's job has a status record like any other.
    assert_eq!(c.status(job)["status"], "succeeded");
    c.sigterm_all();
}
