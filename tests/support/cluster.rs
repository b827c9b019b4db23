//! A local thumbd cluster for black-box tests: `thumbd api` and `thumbd worker` processes
//! on loopback sharing RabbitMQ, PostgreSQL and a blob directory. Each `Cluster` has its own
//! AMQP namespace, PostgreSQL schema and directory, removed when it is dropped. Shared by
//! the black-box tests of distributed mode (included with `#[path]`).
#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use thumbd_amqp::{AmqpJobQueue, AmqpOptions};
use thumbd_jobs::services;
use thumbd_postgres::TestSchema;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const SECRET: &str = "distributed-test-secret-0123456789abcdef";

/// A namespace, a schema and a directory, and the processes started on them.
pub struct Cluster {
    pub rt: tokio::runtime::Runtime,
    pub amqp_url: String,
    pub namespace: String,
    pub schema: Option<TestSchema>,
    pub dir: tempfile::TempDir,
    pub api: Option<Proc>,
    pub workers: Vec<Proc>,
    pub token: String,
    /// `THUMBD_STORAGE_URL` for the processes; default: a shared directory.
    pub storage: Option<String>,
    /// More environment (credentials, tuning) for every process started after it is set.
    pub env: Vec<(String, String)>,
}

/// A spawned `thumbd api` or `thumbd worker`.
pub struct Proc {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Cluster {
    /// `None` (SKIP) when RabbitMQ or PostgreSQL is not there.
    pub fn new(test: &str) -> Option<Cluster> {
        let amqp_url = services::service_url("THUMBD_TEST_AMQP_URL", AMQP, test)?;
        let pg_url = services::service_url("THUMBD_TEST_DATABASE_URL", PG, test)?;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let schema = rt
            .block_on(TestSchema::create(&pg_url))
            .expect("test schema");
        let namespace = format!("thumbd-test-{test}-{}", std::process::id());
        let token = mint(&[]);
        Some(Cluster {
            rt,
            amqp_url,
            namespace,
            schema: Some(schema),
            dir: tempfile::tempdir().unwrap(),
            api: None,
            workers: Vec::new(),
            token,
            storage: None,
            env: Vec::new(),
        })
    }

    /// A read-write token of `tenant`, minted as the processes' secret allows.
    pub fn token_for_tenant(&self, tenant: &str) -> String {
        mint(&["--tenant", tenant])
    }

    pub fn spawn(&self, role: &str, name: &str) -> Proc {
        self.spawn_with(role, name, 1)
    }

    /// Starts `thumbd ROLE` with `workers` image threads.
    pub fn spawn_with(&self, role: &str, name: &str, workers: usize) -> Proc {
        let log = self.dir.path().join(format!("{name}.log"));
        let workers = workers.to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_thumbd"))
            .args([role, "--listen", "127.0.0.1:0", "--workers", &workers])
            .env("THUMBD_AMQP_URL", &self.amqp_url)
            .env("THUMBD_AMQP_NAMESPACE", &self.namespace)
            .env("THUMBD_DATABASE_URL", self.schema.as_ref().unwrap().url())
            .env(
                "THUMBD_STORAGE_URL",
                self.storage.clone().unwrap_or_else(|| {
                    format!("file://{}", self.dir.path().join("blobs").display())
                }),
            )
            .envs(self.env.iter().cloned())
            .env("THUMBD_DATA_DIR", self.dir.path().join(name))
            .env("THUMBD_JWT_SECRET", SECRET)
            // Load from one client on purpose: no rate limit (tested in thumbd-api).
            .env("THUMBD_RATE_LIMIT", "0")
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

    pub fn start_api(&mut self) {
        self.api = Some(self.spawn("api", "api"));
    }

    pub fn start_worker(&mut self) {
        let name = format!("worker-{}", self.workers.len() + 1);
        let worker = self.spawn("worker", &name);
        self.workers.push(worker);
    }

    pub fn api(&self) -> &str {
        &self.api.as_ref().expect("api started").base
    }

    pub fn queue(&self) -> AmqpJobQueue {
        AmqpJobQueue::new(
            &self.amqp_url,
            AmqpOptions {
                namespace: self.namespace.clone(),
                ..AmqpOptions::default()
            },
        )
        .unwrap()
    }

    pub fn submit(&self, id: &str, image: &[u8]) -> String {
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

    /// Job `job`'s status body, asked again (as a client would) while the API answers 503.
    pub fn status(&self, job: &str) -> Value {
        for _ in 0..100 {
            let mut r = agent()
                .get(format!("{}/v1/status/{job}", self.api()))
                .header("authorization", &format!("Bearer {}", self.token))
                .call()
                .unwrap();
            match r.status().as_u16() {
                200 => {
                    return serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                }
                503 => std::thread::sleep(Duration::from_millis(200)),
                other => panic!("status of {job}: {other}"),
            }
        }
        panic!("status of {job}: 503 for 20 s");
    }

    /// The bytes of thumbnail `id` (development), which must be served as a PNG.
    pub fn thumbnail_png(&self, id: &str) -> Vec<u8> {
        let mut r = agent()
            .get(format!(
                "{}/v1/thumbnails/{id}?environment=development",
                self.api()
            ))
            .header("authorization", &format!("Bearer {}", self.token))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "thumbnail {id}");
        let bytes = r.body_mut().read_to_vec().unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "thumbnail {id} is not a PNG");
        bytes
    }

    /// Polls every job until all are finished; returns their final status bodies.
    pub fn wait_all(&self, jobs: &[String], within: Duration) -> Vec<Value> {
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

    pub fn logs(&self) -> String {
        self.api
            .iter()
            .chain(&self.workers)
            .map(|p| format!("--- {}\n{}", p.log.display(), p.log()))
            .collect()
    }

    pub fn sigterm_all(&mut self) {
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
        let lane = |name: &str, retry_delays: Vec<Duration>| {
            AmqpJobQueue::new(
                &self.amqp_url,
                AmqpOptions {
                    namespace: format!("{}.{name}", self.namespace),
                    retry_delays,
                    ..AmqpOptions::default()
                },
            )
            .unwrap()
        };
        // Every lane's queues, retry queues included (the processes declared them).
        let webhooks = lane(
            thumbd_jobs::WEBHOOK_LANE,
            thumbd_worker::DeliveryOptions::default().schedule,
        );
        let renditions = lane(
            thumbd_jobs::RENDITION_LANE,
            AmqpOptions::default().retry_delays,
        );
        let schema = self.schema.take();
        self.rt.block_on(async {
            let _ = queue.delete_topology().await;
            let _ = webhooks.delete_topology().await;
            let _ = renditions.delete_topology().await;
            if let Some(schema) = schema {
                let _ = schema.remove().await;
            }
        });
    }
}

/// A read-write token that also manages webhooks, from `thumbd token … EXTRA` with the
/// processes' secret.
fn mint(extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_thumbd"))
        .args([
            "token",
            "--scope",
            "thumbnails:write",
            "--scope",
            "thumbnails:read",
            "--scope",
            "webhooks:manage",
        ])
        .args(extra)
        .env("THUMBD_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn thumbnail_files(dir: &Path) -> usize {
    walk(&dir.join("blobs").join("thumbnails"))
}

pub fn walk(dir: &Path) -> usize {
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

/// A queue producer on the cluster's broker, as the README's pika example is: a channel, an
/// exclusive reply queue (`reply_to`) with its consumer, and persistent, confirmed publishes
/// to the cluster's exchange with routing key `jobs.v1`.
pub struct Producer {
    pub connection: lapin::Connection,
    pub channel: lapin::Channel,
    pub reply_to: String,
    replies: lapin::Consumer,
    exchange: String,
}

impl Producer {
    pub async fn connect(cluster: &Cluster) -> Producer {
        use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};
        use lapin::types::FieldTable;
        let connection =
            lapin::Connection::connect(&cluster.amqp_url, lapin::ConnectionProperties::default())
                .await
                .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let queue = channel
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
        let reply_to = queue.name().to_string();
        let replies = channel
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
        Producer {
            connection,
            channel,
            reply_to,
            replies,
            exchange: cluster.namespace.clone(),
        }
    }

    /// Publishes `body` persistently and waits for the broker's confirm.
    pub async fn publish(&self, body: &[u8]) {
        self.channel
            .basic_publish(
                self.exchange.as_str().into(),
                thumbd_amqp::ROUTING_KEY.into(),
                lapin::options::BasicPublishOptions::default(),
                body,
                lapin::BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// The next reply on `reply_to`, within `within`.
    pub async fn reply(&mut self, within: Duration) -> Value {
        use futures_util::StreamExt as _;
        let delivery = tokio::time::timeout(within, self.replies.next())
            .await
            .expect("a reply in time")
            .unwrap()
            .unwrap();
        serde_json::from_slice(&delivery.data).unwrap()
    }
}
