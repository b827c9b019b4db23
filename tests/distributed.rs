//! Distributed mode as operators run it: `thumbd api` and `thumbd worker` processes sharing
//! RabbitMQ, PostgreSQL and a blob directory, all on loopback. Each test has its own AMQP
//! namespace (exchange and queues), PostgreSQL schema and directory, removed at the end.
//! Without RabbitMQ or PostgreSQL the tests say SKIP (or fail with THUMBD_REQUIRE_SERVICES=1).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/images.rs"]
mod images;
#[path = "../crates/thumbd-s3/tests/support/moto.rs"]
mod moto;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use lapin::options::BasicGetOptions;
use lapin::types::AMQPValue;
use serde_json::Value;
use thumbd_jobs::JobQueue as _;

use cluster::{Cluster, Producer, thumbnail_files};
use images::png;

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
    c.thumbnail_png("share-3");
    for w in &c.workers {
        let done = w.log().matches("job succeeded").count();
        assert!(done >= 1, "{} did no job:\n{}", w.log.display(), c.logs());
    }
    assert_eq!(thumbnail_files(c.dir.path()), 16);
    c.sigterm_all();
}

/// Serves `body` over HTTP on loopback, except that the first request is never answered
/// (its connection is held open): a source that keeps a worker busy for as long as a test
/// wants. Returns the URL and whether that first request has arrived.
fn hold_first_request(body: Vec<u8>) -> (String, Arc<AtomicBool>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/held.png", listener.local_addr().unwrap());
    let first_seen = Arc::new(AtomicBool::new(false));
    let seen = first_seen.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            if !seen.swap(true, Ordering::SeqCst) {
                held.push(stream);
                continue;
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    (url, first_seen)
}

#[test]
fn a_worker_killed_mid_job_loses_nothing_and_finishes_each_job_once() {
    let Some(mut c) = Cluster::new("kill") else {
        return;
    };
    c.env
        .push(("THUMBD_ALLOW_PRIVATE_SOURCES".into(), "true".into()));
    c.start_api();
    c.start_worker();
    // One job whose source never answers its first request: the worker is killed while it
    // holds that job (started, not finished), whatever the speed of the machine.
    let (url, first_seen) = hold_first_request(png(640, 480, 9));
    let mut r = cluster::agent()
        .post(format!(
            "{}/v1/thumbnails?thumbnailId=kill-held&environment=development",
            c.api()
        ))
        .header("authorization", &format!("Bearer {}", c.token))
        .header("content-type", "application/json")
        .send(serde_json::json!({ "url": url }).to_string())
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let held: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let held = held["id"].as_str().unwrap().to_owned();
    let mut jobs: Vec<String> = (0..6)
        .map(|i| c.submit(&format!("kill-{i}"), &png(2600, 2000, i)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(first_seen.load(Ordering::SeqCst) && c.status(&held)["status"] == "processing") {
        assert!(Instant::now() < deadline, "nothing started:\n{}", c.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut killed = c.workers.remove(0);
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    c.start_worker();
    jobs.push(held.clone());
    let bodies = c.wait_all(&jobs, Duration::from_secs(120));
    for b in &bodies {
        assert_eq!(b["status"], "succeeded", "{b}");
    }
    assert!(
        c.status(&held)["attempts"].as_u64() >= Some(2),
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
        let mut producer = Producer::connect(&c).await;
        let reply_to = producer.reply_to.clone();
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
        producer
            .publish(&serde_json::to_vec(&message).unwrap())
            .await;
        // …the same thumbnailId for another tenant…
        let other = serde_json::json!({
            "jobId": TENANT_JOB,
            "tenant": "acme",
            "environment": "production",
            "thumbnailId": "from-a-producer",
            "source": {
                "inline": base64::engine::general_purpose::STANDARD.encode(png(200, 300, 2)),
                "contentType": "image/png"
            },
        });
        producer.publish(&serde_json::to_vec(&other).unwrap()).await;
        // …and a malformed one.
        producer.publish(b"{\"thumbnailId\": 42").await;

        let reply = producer.reply(Duration::from_secs(30)).await;

        let dead = format!("{}.dead", c.namespace);
        let deadline = Instant::now() + Duration::from_secs(30);
        let dead_letter = loop {
            if let Some(m) = producer
                .channel
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
        let _ = producer.connection.close(200, "done".into()).await;
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
    // The tenant's job made the tenant's thumbnail, and only the tenant sees it.
    let acme = c.token_for_tenant("acme");
    let get = |path: &str, token: &str| {
        let mut r = cluster::agent()
            .get(format!("{}{path}", c.api()))
            .header("authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_vec().unwrap())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = format!("/v1/status/{TENANT_JOB}");
    while !String::from_utf8_lossy(&get(&status, &acme).1).contains("succeeded") {
        assert!(Instant::now() < deadline, "the tenant's job never finished");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(&status, &c.token).0, 404, "another tenant's job");
    let thumb = "/v1/thumbnails/from-a-producer?environment=production";
    let (mine, theirs) = (get(thumb, &c.token), get(thumb, &acme));
    assert_eq!((mine.0, theirs.0), (200, 200));
    assert_ne!(mine.1, theirs.1, "one thumbnail per tenant");
    c.sigterm_all();
}

/// The job a producer publishes for the tenant `acme`.
const TENANT_JOB: &str = "0192e4a0-0000-7000-8000-0000000acbe0";

#[test]
fn the_readme_pika_producer_runs_as_written() {
    let has_pika = Command::new("python3")
        .args(["-c", "import pika"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_pika {
        assert!(
            std::env::var("THUMBD_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "python3 with pika is needed (pip install pika)"
        );
        eprintln!(
            "\n==== SKIP the_readme_pika_producer_runs_as_written: no pika (pip install pika) ====\n"
        );
        return;
    }
    let Some(mut c) = Cluster::new("pika") else {
        return;
    };
    c.start_api();
    c.start_worker();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let script = readme
        .split("<!-- example:pika -->\n```python\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the README's pika example");
    let dir = c.dir.path();
    std::fs::write(dir.join("producer.py"), script).unwrap();
    std::fs::write(dir.join("photo.png"), png(640, 480, 9)).unwrap();
    let out = Command::new("python3")
        .args(["producer.py", "photo.png", "cover-7"])
        .current_dir(dir)
        .env("THUMBD_AMQP_URL", &c.amqp_url)
        .env("THUMBD_AMQP_NAMESPACE", &c.namespace)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: Value = serde_json::from_str(stdout.trim()).expect("the reply is the status body");
    assert_eq!(reply["status"], "succeeded", "{reply}");
    assert_eq!(reply["thumbnailId"], "cover-7");
    let job = reply["id"].as_str().unwrap();
    assert_eq!(c.status(job)["result"]["width"], 330);
    c.sigterm_all();
}

#[test]
fn a_job_whose_publish_never_happened_is_swept_and_done() {
    let Some(mut c) = Cluster::new("sweep") else {
        return;
    };
    // What an API process leaves when it dies between writing the record and publishing:
    // the original and a `queued` record, two minutes old, no message.
    let job = thumbd_jobs::JobId::new();
    c.rt.block_on(async {
        use thumbd_jobs::{BlobStore as _, JobStore as _};
        let blobs = thumbd_jobs::FsBlobStore::open(c.dir.path().join("blobs")).unwrap();
        let key = thumbd_jobs::BlobKey::original(job);
        blobs.put(&key, png(640, 480, 4).into()).await.unwrap();
        let message = thumbd_jobs::JobMessage {
            tenant: thumbd_jobs::Tenant::default(),
            job_id: Some(job),
            environment: thumbd_jobs::Environment::Development,
            thumbnail_id: thumbd_jobs::ThumbnailId::parse("orphaned").unwrap(),
            source: thumbd_jobs::JobSource::Blob { blob_key: key },
            reply_to: None,
            profile: None,
        };
        let store = c.schema.as_ref().unwrap().store().await.unwrap();
        let created = thumbd_jobs::Timestamp::now().minus(Duration::from_secs(120));
        let record = thumbd_jobs::JobRecord::queued(job, &message, created);
        assert!(store.create_job(&record).await.unwrap());
        store.close().await;
    });
    c.start_api(); // its sweeper publishes the job
    c.start_worker();
    let done = c.wait_all(&[job.to_string()], Duration::from_secs(60));
    assert_eq!(done[0]["status"], "succeeded", "{}", done[0]);
    assert!(c.api.as_ref().unwrap().log().contains("never published"));
    c.sigterm_all();
}

#[test]
fn an_api_and_a_worker_on_s3_storage() {
    let Some(moto) = moto::Moto::start("an_api_and_a_worker_on_s3_storage") else {
        return;
    };
    let Some(mut c) = Cluster::new("s3") else {
        return;
    };
    moto.create_bucket("thumbd-blobs");
    c.storage = Some(format!(
        "s3://thumbd-blobs?endpoint={}&region=us-east-1&prefix=cluster",
        moto.endpoint
    ));
    c.env.extend([
        ("AWS_ACCESS_KEY_ID".into(), moto::ACCESS_KEY_ID.into()),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            moto::SECRET_ACCESS_KEY.into(),
        ),
    ]);
    c.start_api();
    c.start_worker();
    let jobs: Vec<String> = (0..4)
        .map(|i| c.submit(&format!("s3-{i}"), &png(640 + i, 480, i)))
        .collect();
    for b in c.wait_all(&jobs, Duration::from_secs(60)) {
        assert_eq!(b["status"], "succeeded", "{b}");
    }
    c.thumbnail_png("s3-2");
    // The bytes live in the bucket, not on disk.
    assert_eq!(thumbnail_files(c.dir.path()), 0);
    let store = moto.store("thumbd-blobs", "&prefix=cluster");
    let served = c.rt.block_on(async {
        use thumbd_jobs::ThumbnailStore as _;
        let pg = c.schema.as_ref().unwrap().store().await.unwrap();
        let t = pg
            .thumbnail(
                &thumbd_jobs::Namespace::default_tenant(thumbd_jobs::Environment::Development),
                &thumbd_jobs::ThumbnailId::parse("s3-2").unwrap(),
            )
            .await
            .unwrap()
            .expect("a current thumbnail");
        pg.close().await;
        use thumbd_jobs::BlobStore as _;
        store.get(&t.result.blob_key).await.unwrap()
    });
    assert!(served.is_some_and(|b| b.starts_with(b"\x89PNG")));
    c.sigterm_all();
}
