//! The worker against real SQLite and real files: each outcome, redelivery, retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use thumbd_jobs::JobStore as _;
use thumbd_jobs::ThumbnailStore as _;

use async_trait::async_trait;
use bytes::Bytes;
use thumbd_fetch::FetchOptions;
use thumbd_jobs::{
    BlobKey, BlobStore, Environment, FsBlobStore, JobEvents, JobId, JobMessage, JobQueue,
    JobRecord, JobSource, JobStatus, LocalRun, SqliteDb, SqliteJobQueue, SqliteMetaStore,
    ThumbnailId, Timestamp,
};
use thumbd_worker::{Outcome, Worker, WorkerOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    let data: Vec<u8> = (0..w * h * 3)
        .map(|i| u8::try_from(i % 253).unwrap())
        .collect();
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    out
}

/// Blob store wrapper that fails the first `fail_puts` puts: failure injection at the one
/// point where a transient error is easy to cause on purpose.
struct FlakyBlobs {
    inner: FsBlobStore,
    fail_puts: AtomicU32,
    /// Thumbnail puts fail as damaged data (not a backend being down) while set.
    damaged: std::sync::atomic::AtomicBool,
    /// The database's power-safe commits each time an original was deleted.
    db: SqliteDb,
    durable_at_delete: std::sync::Mutex<Vec<u64>>,
}

#[async_trait]
impl BlobStore for FlakyBlobs {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> thumbd_jobs::Result<()> {
        if key.as_str().starts_with("thumbnails/") && self.damaged.load(Ordering::SeqCst) {
            return Err(thumbd_jobs::Error::Damaged(
                "injected: the same every time".into(),
            ));
        }
        if key.as_str().starts_with("thumbnails/")
            && self
                .fail_puts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(std::io::Error::other("injected: disk full").into());
        }
        self.inner.put(key, bytes).await
    }
    async fn get(&self, key: &BlobKey) -> thumbd_jobs::Result<Option<Bytes>> {
        self.inner.get(key).await
    }
    async fn delete(&self, key: &BlobKey) -> thumbd_jobs::Result<bool> {
        if key.is_original() {
            let durable = self.db.durable_commits();
            self.durable_at_delete.lock().unwrap().push(durable);
        }
        self.inner.delete(key).await
    }
    async fn ping(&self) -> thumbd_jobs::Result<()> {
        self.inner.ping().await
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    queue: Arc<SqliteJobQueue>,
    store: Arc<SqliteMetaStore>,
    blobs: Arc<FlakyBlobs>,
    worker: Arc<Worker>,
    worker_events: JobEvents,
}

async fn rig(fail_puts: u32, options: WorkerOptions) -> Rig {
    rig_visible_for(fail_puts, options, Duration::from_secs(30)).await
}

/// A rig whose queue makes a lease not renewed within `visibility` visible again.
async fn rig_visible_for(fail_puts: u32, options: WorkerOptions, visibility: Duration) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(&dir.path().join("thumbd.db")).await.unwrap();
    let queue = Arc::new(SqliteJobQueue::unlocked(db.clone(), visibility));
    let store = Arc::new(SqliteMetaStore::new(db.clone()));
    let blobs = Arc::new(FlakyBlobs {
        inner: FsBlobStore::open(dir.path().join("blobs")).unwrap(),
        fail_puts: AtomicU32::new(fail_puts),
        damaged: std::sync::atomic::AtomicBool::new(false),
        db,
        durable_at_delete: std::sync::Mutex::default(),
    });
    let worker_events = JobEvents::new();
    let worker = Arc::new(Worker::new(
        queue.clone(),
        store.clone(),
        blobs.clone(),
        worker_events.clone(),
        WorkerOptions {
            lease_wait: Duration::from_millis(100),
            retry_base: Duration::ZERO,
            ..options
        },
    ));
    Rig {
        _dir: dir,
        queue,
        store,
        blobs,
        worker,
        worker_events,
    }
}

impl Rig {
    /// Does what the API does: original blob, queued record, message.
    async fn submit(&self, id: &str, image: &[u8]) -> JobId {
        let job = JobId::new();
        let key = BlobKey::original(job);
        self.blobs
            .put(&key, Bytes::copy_from_slice(image))
            .await
            .unwrap();
        self.enqueue(job, id, JobSource::Blob { blob_key: key })
            .await
    }

    /// The record the API creates for a job it hands to a local run (nothing else).
    async fn record_for_local_run(&self, id: &str) -> JobRecord {
        let job = JobId::new();
        let message = JobMessage {
            tenant: thumbd_jobs::Tenant::default(),
            job_id: Some(job),
            environment: Environment::Development,
            thumbnail_id: ThumbnailId::parse(id).unwrap(),
            source: JobSource::Blob {
                blob_key: BlobKey::original(job),
            },
            reply_to: None,
            profile: None,
        };
        let record = JobRecord::queued(job, &message, Timestamp::now());
        self.store.create_job(&record).await.unwrap();
        record
    }

    /// A `{"url": …}` job, as the API queues it.
    async fn submit_url(&self, id: &str, url: String) -> JobId {
        self.enqueue(JobId::new(), id, JobSource::Url { url }).await
    }

    /// A `{"url": …}` job of `tenant`.
    async fn submit_url_for(&self, tenant: &str, id: &str, url: String) -> JobId {
        self.enqueue_for(tenant, JobId::new(), id, JobSource::Url { url })
            .await
    }

    /// Queued record, then message.
    async fn enqueue(&self, job: JobId, id: &str, source: JobSource) -> JobId {
        self.enqueue_for(thumbd_jobs::Tenant::DEFAULT, job, id, source)
            .await
    }

    /// Queued record of `tenant`, then message.
    async fn enqueue_for(&self, tenant: &str, job: JobId, id: &str, source: JobSource) -> JobId {
        let message = JobMessage {
            tenant: thumbd_jobs::Tenant::parse(tenant).unwrap(),
            job_id: Some(job),
            environment: Environment::Development,
            thumbnail_id: ThumbnailId::parse(id).unwrap(),
            source,
            reply_to: None,
            profile: None,
        };
        self.store
            .create_job(&JobRecord::queued(job, &message, Timestamp::now()))
            .await
            .unwrap();
        self.queue.push(&message).await.unwrap();
        job
    }
}

#[tokio::test]
async fn success_stores_the_thumbnail_and_drops_the_original() {
    let rig = rig(0, WorkerOptions::default()).await;
    let job = rig.submit("cover", &png(400, 300)).await;
    let outcomes = rig.worker.drain().await;
    assert_eq!(outcomes, vec![Outcome::Succeeded { job, current: true }]);

    let record = rig.store.job(job).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Succeeded);
    assert_eq!(record.attempts, 1);
    let result = record.result.unwrap();
    assert_eq!(
        (result.width, result.height, result.content_type.as_str()),
        (330, 248, "image/png")
    );
    let bytes = rig.blobs.get(&result.blob_key).await.unwrap().unwrap();
    assert_eq!(bytes.len() as u64, result.bytes);
    assert_eq!(&bytes[..4], b"\x89PNG");
    assert_eq!(rig.blobs.get(&BlobKey::original(job)).await.unwrap(), None);
    let thumb = rig
        .store
        .thumbnail(
            &thumbd_jobs::Namespace::default_tenant(Environment::Development),
            &ThumbnailId::parse("cover").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(thumb.job_id, job);
    assert_eq!(rig.queue.depth().await.unwrap(), Default::default());
}

#[tokio::test]
async fn a_finished_record_is_durable_before_its_original_is_deleted_or_announced() {
    // A finish undone by a power loss would run the job again without its original, after
    // its client had been told it succeeded (or failed).
    let rig = rig(0, WorkerOptions::default()).await;
    let good = rig.submit("good", &png(400, 300)).await;
    let bad = rig.submit("bad", b"\x89PNG\r\n\x1a\n not really").await;
    let mut events = rig.worker_events.subscribe();
    let before = rig.blobs.db.durable_commits();
    let outcomes = rig.worker.drain().await;
    assert!(
        matches!(outcomes[0], Outcome::Succeeded { job, .. } if job == good),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[1], Outcome::Failed { job, .. } if *job == bad),
        "{outcomes:?}"
    );
    let at_delete = rig.blobs.durable_at_delete.lock().unwrap().clone();
    assert_eq!(at_delete.len(), 2, "both originals deleted");
    assert!(
        at_delete[0] > before && at_delete[1] > at_delete[0],
        "a durable commit after each finish and before its original went: {before} then {at_delete:?}"
    );
    let announced: Vec<JobId> =
        std::iter::from_fn(|| events.try_recv().ok().map(|e| e.id)).collect();
    assert_eq!(announced, [good, bad]);
}

#[tokio::test]
async fn a_redelivered_finished_job_is_skipped() {
    let rig = rig(0, WorkerOptions::default()).await;
    let job = rig.submit("twice", &png(200, 200)).await;
    let message = JobMessage::parse(
        &rig.queue
            .lease(Duration::from_millis(50))
            .await
            .unwrap()
            .unwrap()
            .payload,
    )
    .unwrap();
    rig.queue.release_leases().await.unwrap();
    rig.queue.push(&message).await.unwrap(); // a duplicate delivery of the same job
    let outcomes = rig.worker.drain().await;
    assert_eq!(
        outcomes,
        vec![
            Outcome::Succeeded { job, current: true },
            Outcome::Skipped { job }
        ]
    );
    assert_eq!(rig.store.job(job).await.unwrap().unwrap().attempts, 1);
}

#[tokio::test]
async fn two_deliveries_at_once_keep_the_served_blob() {
    let rig = rig(0, WorkerOptions::default()).await;
    let job = rig.submit("raced", &png(600, 400)).await;
    let first = rig
        .queue
        .lease(Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    let message = JobMessage::parse(&first.payload).unwrap();
    rig.queue.push(&message).await.unwrap(); // the same job delivered again (a republish)
    let second = rig
        .queue
        .lease(Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    // Both pass start_job before either finishes; they write the same (deterministic)
    // result key, and the one that loses the finish must not delete it.
    let (a, b) = tokio::join!(
        rig.worker.process_one(first),
        rig.worker.process_one(second)
    );
    let mut outcomes = [a, b];
    outcomes.sort_by_key(|o| matches!(o, Outcome::Skipped { .. }));
    assert_eq!(
        outcomes,
        [
            Outcome::Succeeded { job, current: true },
            Outcome::Skipped { job }
        ]
    );
    let result = rig.store.job(job).await.unwrap().unwrap().result.unwrap();
    assert!(
        rig.blobs.get(&result.blob_key).await.unwrap().is_some(),
        "the served thumbnail's blob was deleted by the duplicate"
    );
}

#[tokio::test]
async fn image_errors_fail_the_job_with_their_code() {
    let rig = rig(0, WorkerOptions::default()).await;
    let mut truncated = png(300, 300);
    truncated.truncate(truncated.len() / 2);
    let corrupt = rig.submit("corrupt", &truncated).await;
    let small = rig.submit("small", &png(50, 50)).await;
    let outcomes = rig.worker.drain().await;
    assert_eq!(
        outcomes,
        vec![
            Outcome::Failed {
                job: corrupt,
                code: thumbd_jobs::Code::CorruptImage
            },
            Outcome::Failed {
                job: small,
                code: thumbd_jobs::Code::ThumbnailTooSmall
            },
        ]
    );
    let record = rig.store.job(corrupt).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(record.error.unwrap().code, "CorruptImage");
    assert_eq!(
        rig.blobs.get(&BlobKey::original(corrupt)).await.unwrap(),
        None
    );
    assert_eq!(rig.queue.depth().await.unwrap().ready, 0);
}

#[tokio::test]
async fn a_failed_replace_keeps_the_old_thumbnail() {
    let rig = rig(0, WorkerOptions::default()).await;
    let first = rig.submit("keep", &png(300, 200)).await;
    rig.worker.drain().await;
    rig.submit("keep", b"\x89PNG\r\n\x1a\nnot really").await;
    rig.worker.drain().await;
    let thumb = rig
        .store
        .thumbnail(
            &thumbd_jobs::Namespace::default_tenant(Environment::Development),
            &ThumbnailId::parse("keep").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(thumb.job_id, first);
    assert!(
        rig.blobs
            .get(&thumb.result.blob_key)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_replace_deletes_the_old_blob() {
    let rig = rig(0, WorkerOptions::default()).await;
    let first = rig.submit("swap", &png(300, 200)).await;
    rig.worker.drain().await;
    let old_key = rig
        .store
        .job(first)
        .await
        .unwrap()
        .unwrap()
        .result
        .unwrap()
        .blob_key;
    rig.submit("swap", &png(200, 300)).await;
    rig.worker.drain().await;
    assert_eq!(rig.blobs.get(&old_key).await.unwrap(), None);
}

#[tokio::test]
async fn transient_errors_retry_then_succeed() {
    let rig = rig(2, WorkerOptions::default()).await;
    let job = rig.submit("flaky", &png(200, 200)).await;
    let outcomes = rig.worker.drain().await;
    assert!(
        matches!(
            outcomes[..],
            [
                Outcome::Retried { .. },
                Outcome::Retried { .. },
                Outcome::Succeeded { .. }
            ]
        ),
        "{outcomes:?}"
    );
    let record = rig.store.job(job).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Succeeded, 3));
}

#[tokio::test]
async fn transient_errors_never_fail_a_job_however_long_they_last() {
    // A backend down for longer than the delivery limit allows: the job waits it out.
    let options = WorkerOptions {
        max_deliveries: 3,
        ..WorkerOptions::default()
    };
    let rig = rig(8, options).await;
    let job = rig.submit("patient", &png(200, 200)).await;
    let outcomes = rig.worker.drain().await;
    assert_eq!(outcomes.len(), 9, "{outcomes:?}");
    assert!(
        outcomes[..8]
            .iter()
            .all(|o| matches!(o, Outcome::Retried { .. })),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[8], Outcome::Succeeded { .. }),
        "{outcomes:?}"
    );
    let record = rig.store.job(job).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Succeeded, 9));
}

#[tokio::test]
async fn a_failure_that_is_not_a_backend_outage_gives_up_after_the_limit() {
    // An error that repeats for the same job (not a backend that is down) must not make it
    // loop for ever.
    let options = WorkerOptions {
        max_deliveries: 3,
        ..WorkerOptions::default()
    };
    let rig = rig(0, options).await;
    rig.blobs.damaged.store(true, Ordering::SeqCst);
    let job = rig.submit("damaged", &png(200, 200)).await;
    let outcomes = rig.worker.drain().await;
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(matches!(&outcomes[2], Outcome::DeadLettered { job: Some(j), .. } if *j == job));
    let record = rig.store.job(job).await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.error.unwrap().code.as_str()),
        (JobStatus::Failed, "InternalError")
    );
}

#[tokio::test]
async fn a_message_that_does_not_match_its_jobs_record_is_dead_lettered() {
    // A producer reusing another job's id (another tenant's, say) must not run its own
    // source into that job's thumbnail.
    let rig = rig(0, WorkerOptions::default()).await;
    let job = rig.submit("theirs", &png(200, 200)).await;
    let taken = rig
        .queue
        .lease(Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    let mut message = JobMessage::parse(&taken.payload).unwrap();
    assert!(rig.queue.ack(&taken).await.unwrap());
    message.tenant = thumbd_jobs::Tenant::parse("intruder").unwrap();
    rig.queue.push(&message).await.unwrap();
    let outcomes = rig.worker.drain().await;
    assert!(
        matches!(&outcomes[..], [Outcome::DeadLettered { job: Some(j), .. }] if *j == job),
        "{outcomes:?}"
    );
    let record = rig.store.job(job).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Queued, "left for its own message");
    let id = ThumbnailId::parse("theirs").unwrap();
    for tenant in [thumbd_jobs::Tenant::DEFAULT, "intruder"] {
        let ns = thumbd_jobs::Namespace::new(
            thumbd_jobs::Tenant::parse(tenant).unwrap(),
            Environment::Development,
        );
        assert_eq!(
            rig.store.thumbnail(&ns, &id).await.unwrap(),
            None,
            "{tenant}"
        );
    }
}

#[tokio::test]
async fn deliveries_no_worker_settled_dead_letter_the_message() {
    // Workers that die on a message (an image that kills the process, say) never settle
    // it: past the limit, the next delivery gives up on it.
    let options = WorkerOptions {
        max_deliveries: 3,
        ..WorkerOptions::default()
    };
    let rig = rig(0, options).await;
    let job = rig.submit("doomed", &png(200, 200)).await;
    for _ in 0..3 {
        let lease = rig.queue.lease(Duration::from_millis(50)).await.unwrap();
        assert!(lease.is_some());
        rig.queue.release_leases().await.unwrap(); // the worker died holding it
    }
    let outcomes = rig.worker.drain().await;
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert!(matches!(&outcomes[0], Outcome::DeadLettered { job: Some(j), .. } if *j == job));
    let record = rig.store.job(job).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(record.error.unwrap().code, "InternalError");
    assert_eq!(rig.queue.depth().await.unwrap().dead, 1);
    assert_eq!(
        rig.blobs.get(&BlobKey::original(job)).await.unwrap(),
        None,
        "a job given up on keeps no original"
    );
}

#[tokio::test]
async fn producer_messages_without_records_or_ids() {
    let rig = rig(0, WorkerOptions::default()).await;
    use base64::Engine as _;
    let body = format!(
        r#"{{"environment":"production","thumbnailId":"inline","source":{{"inline":"{}","contentType":"image/png"}}}}"#,
        base64::engine::general_purpose::STANDARD.encode(png(120, 90))
    );
    let message = JobMessage::parse(body.as_bytes()).unwrap();
    rig.queue.push(&message).await.unwrap();
    let outcomes = rig.worker.drain().await;
    let [Outcome::Succeeded { job, current: true }] = outcomes[..] else {
        panic!("{outcomes:?}")
    };
    assert_eq!(job, JobId::derived_from(&message.to_json()));
    let record = rig.store.job(job).await.unwrap().unwrap();
    assert_eq!(
        (record.status, record.result.unwrap().width),
        (JobStatus::Succeeded, 120)
    );

    // Declared type that does not match the bytes.
    let wrong = body.replace("image/png", "image/jpeg");
    rig.queue
        .push(&JobMessage::parse(wrong.as_bytes()).unwrap())
        .await
        .unwrap();
    let outcomes = rig.worker.drain().await;
    assert!(
        matches!(&outcomes[..], [Outcome::Failed { code, .. }] if *code == thumbd_jobs::Code::InvalidThumbnailFormat),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn malformed_messages_are_dead_lettered_not_retried() {
    let rig = rig(0, WorkerOptions::default()).await;
    for body in [
        &b"not json"[..],
        br#"{"environment":"staging","thumbnailId":"x","source":{"url":"u"}}"#,
    ] {
        rig.queue.push_raw(body).await.unwrap();
    }
    let outcomes = rig.worker.drain().await;
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        assert!(
            matches!(o, Outcome::DeadLettered { job: None, reason } if reason.starts_with("malformed message")),
            "{o:?}"
        );
    }
    assert_eq!(rig.queue.depth().await.unwrap().dead, 2);
}

#[tokio::test]
async fn an_unknown_blob_fails_the_job() {
    let rig = rig(0, WorkerOptions::default()).await;
    let message = JobMessage {
        tenant: thumbd_jobs::Tenant::default(),
        job_id: Some(JobId::new()),
        environment: Environment::Production,
        thumbnail_id: ThumbnailId::parse("ghost").unwrap(),
        source: JobSource::Blob {
            blob_key: BlobKey::parse("originals/nothing-here").unwrap(),
        },
        reply_to: None,
        profile: None,
    };
    rig.queue.push(&message).await.unwrap();
    let outcomes = rig.worker.drain().await;
    assert!(
        matches!(&outcomes[..], [Outcome::Failed { code, .. }] if *code == thumbd_jobs::Code::SourceFetchFailed),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn run_processes_concurrently_and_stops_gracefully() {
    let options = WorkerOptions {
        concurrency: 4,
        pixel_budget: 200_000,
        ..WorkerOptions::default()
    };
    let rig = rig(0, options).await;
    let mut jobs = Vec::new();
    for i in 0..12 {
        jobs.push(rig.submit(&format!("run-{i}"), &png(400 + i, 300)).await);
    }
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(rig.worker.clone().run(shutdown.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut done = 0;
        for &j in &jobs {
            if rig.store.job(j).await.unwrap().unwrap().status == JobStatus::Succeeded {
                done += 1;
            }
        }
        if done == jobs.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{done}/{} done",
            jobs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rig.queue.depth().await.unwrap(), Default::default());
}

/// An HTTP server on 127.0.0.1 answering `/<name>` with `(status, body)` from `routes`
/// (404 otherwise), one response per connection. Returns its base URL.
async fn serve(routes: Vec<(&'static str, u16, Vec<u8>)>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, body) = routes
                    .iter()
                    .find(|(name, _, _)| path.strip_prefix('/') == Some(*name))
                    .map_or((404, &b"not found"[..]), |(_, status, body)| {
                        (*status, &body[..])
                    });
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body).await;
            });
        }
    });
    base
}

/// Serves `body` at any path, but answers no request before `open` says true: a source
/// as slow as the test wants.
async fn serve_gated(body: Vec<u8>, open: tokio::sync::watch::Receiver<bool>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let body = Arc::new(body);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (body, mut open) = (body.clone(), open.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = open.wait_for(|open| *open).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
            });
        }
    });
    base
}

/// Polls job `id` until it has finished or `limit` has passed.
async fn finished_within(store: &SqliteMetaStore, id: JobId, limit: Duration) -> Option<JobStatus> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        let status = store.job(id).await.unwrap().unwrap().status;
        if status.is_finished() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn slow_url_sources_do_not_keep_image_jobs_from_running() {
    // One slot for image work; two slow downloads must not hold it.
    let rig = rig(
        0,
        WorkerOptions {
            concurrency: 1,
            prefetch: 1,
            downloads: 2,
            fetch: FetchOptions {
                allow_private: true,
                timeout: Duration::from_secs(60),
                ..FetchOptions::default()
            },
            ..WorkerOptions::default()
        },
    )
    .await;
    let (open, gate) = tokio::sync::watch::channel(false);
    let base = serve_gated(png(300, 200), gate).await;
    // Three slow sources for two download slots: the third must not wait in the one slot
    // image work has.
    let mut slow = Vec::new();
    for i in 0..3 {
        slow.push(
            rig.submit_url(&format!("slow-{i}"), format!("{base}/slow-{i}.png"))
                .await,
        );
    }
    let stop = CancellationToken::new();
    let run = tokio::spawn(rig.worker.clone().run(stop.clone()));
    // Both downloads are under way (the server holds them) before the image job arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let image = rig.submit("upload", &png(400, 300)).await;
    assert_eq!(
        finished_within(&rig.store, image, Duration::from_secs(10)).await,
        Some(JobStatus::Succeeded),
        "the image job ran while the sources were still answering"
    );
    for id in &slow {
        assert!(
            !rig.store
                .job(*id)
                .await
                .unwrap()
                .unwrap()
                .status
                .is_finished()
        );
    }
    open.send(true).unwrap();
    for id in slow {
        assert_eq!(
            finished_within(&rig.store, id, Duration::from_secs(20)).await,
            Some(JobStatus::Succeeded)
        );
    }
    stop.cancel();
    run.await.unwrap();
}

#[tokio::test]
async fn one_tenant_downloads_at_most_its_share_of_sources() {
    // Four download slots, one per tenant: tenant a's second slow source waits in the queue
    // (holding nothing), and tenant b's source is not held back by a's.
    let rig = rig(
        0,
        WorkerOptions {
            downloads: 4,
            downloads_per_tenant: 1,
            fetch: FetchOptions {
                allow_private: true,
                timeout: Duration::from_secs(60),
                ..FetchOptions::default()
            },
            ..WorkerOptions::default()
        },
    )
    .await;
    let (open, gate) = tokio::sync::watch::channel(false);
    let slow = serve_gated(png(300, 200), gate).await;
    let fast = serve(vec![("b.png", 200, png(200, 300))]).await;
    let a1 = rig
        .submit_url_for("a", "a-1", format!("{slow}/1.png"))
        .await;
    let a2 = rig
        .submit_url_for("a", "a-2", format!("{slow}/2.png"))
        .await;
    let b = rig.submit_url_for("b", "b", format!("{fast}/b.png")).await;
    let stop = CancellationToken::new();
    let run = tokio::spawn(rig.worker.clone().run(stop.clone()));
    assert_eq!(
        finished_within(&rig.store, b, Duration::from_secs(10)).await,
        Some(JobStatus::Succeeded),
        "tenant b's source while tenant a's is still answering"
    );
    let a2_record = rig.store.job(a2).await.unwrap().unwrap();
    assert_eq!(
        (a2_record.status, a2_record.attempts),
        (JobStatus::Queued, 0),
        "a's second source waits, not started"
    );
    open.send(true).unwrap();
    for id in [a1, a2] {
        assert_eq!(
            finished_within(&rig.store, id, Duration::from_secs(20)).await,
            Some(JobStatus::Succeeded)
        );
    }
    stop.cancel();
    run.await.unwrap();
}

#[tokio::test]
async fn a_slow_download_keeps_its_lease() {
    // The queue takes a lease back after 1 s without a heartbeat; the source answers after
    // 3 s. The delivery that downloads it must still own it when it settles.
    let rig = rig_visible_for(
        0,
        WorkerOptions {
            heartbeat: Duration::from_millis(200),
            ..allow_private()
        },
        Duration::from_secs(1),
    )
    .await;
    let (open, gate) = tokio::sync::watch::channel(false);
    let base = serve_gated(png(300, 200), gate).await;
    let job = rig.submit_url("slow", format!("{base}/slow.png")).await;
    let queue = rig.queue.clone();
    let other_worker = tokio::spawn(async move {
        // Another worker looks for work while the download is under way.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stolen = queue.lease(Duration::from_millis(100)).await.unwrap();
        open.send(true).unwrap();
        stolen.is_some()
    });
    let outcomes = rig.worker.drain().await;
    assert!(
        !other_worker.await.unwrap(),
        "the lease was taken back mid-download"
    );
    assert_eq!(outcomes, vec![Outcome::Succeeded { job, current: true }]);
    assert_eq!(rig.store.job(job).await.unwrap().unwrap().attempts, 1);
}

fn allow_private() -> WorkerOptions {
    WorkerOptions {
        fetch: FetchOptions {
            allow_private: true,
            timeout: Duration::from_secs(5),
            ..FetchOptions::default()
        },
        ..WorkerOptions::default()
    }
}

#[tokio::test]
async fn url_sources_are_downloaded_then_thumbnailed_like_uploads() {
    let base = serve(vec![
        ("cover.png", 200, png(400, 300)),
        ("page.html", 200, b"<html>not an image</html>".to_vec()),
    ])
    .await;
    let rig = rig(0, allow_private()).await;
    let cover = rig.submit_url("cover", format!("{base}/cover.png")).await;
    let page = rig.submit_url("page", format!("{base}/page.html")).await;
    let outcomes = rig.worker.drain().await;
    assert_eq!(
        outcomes,
        vec![
            Outcome::Succeeded {
                job: cover,
                current: true
            },
            Outcome::Failed {
                job: page,
                code: thumbd_jobs::Code::InvalidThumbnailFormat
            },
        ]
    );
    let result = rig.store.job(cover).await.unwrap().unwrap().result.unwrap();
    assert_eq!((result.width, result.height), (330, 248));
    assert!(rig.blobs.get(&result.blob_key).await.unwrap().is_some());
}

#[tokio::test]
async fn url_sources_on_private_addresses_are_refused_by_default() {
    let base = serve(vec![("cover.png", 200, png(400, 300))]).await;
    let rig = rig(0, WorkerOptions::default()).await;
    let job = rig.submit_url("cover", format!("{base}/cover.png")).await;
    let outcomes = rig.worker.drain().await;
    assert_eq!(
        outcomes,
        vec![Outcome::Failed {
            job,
            code: thumbd_jobs::Code::SourceNotAllowed
        }]
    );
    let record = rig.store.job(job).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Failed, 1));
    assert_eq!(record.error.unwrap().code, "SourceNotAllowed");
}

#[tokio::test]
async fn url_sources_failing_transiently_retry_then_fail() {
    let base = serve(vec![
        ("busy.png", 503, Vec::new()),
        ("gone.png", 404, Vec::new()),
    ])
    .await;
    let rig = rig(0, allow_private()).await;
    let busy = rig.submit_url("busy", format!("{base}/busy.png")).await;
    let outcomes = rig.worker.drain().await;
    assert!(
        matches!(
            &outcomes[..],
            [
                Outcome::Retried { .. },
                Outcome::Retried { .. },
                Outcome::Failed { code, .. },
            ] if *code == thumbd_jobs::Code::SourceFetchFailed
        ),
        "{outcomes:?}"
    );
    let record = rig.store.job(busy).await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (JobStatus::Failed, 3));
    assert_eq!(
        record.error.unwrap().message,
        "the source answered 503 Service Unavailable"
    );

    // A 404 is not worth a retry.
    let gone = rig.submit_url("gone", format!("{base}/gone.png")).await;
    let outcomes = rig.worker.drain().await;
    assert_eq!(
        outcomes,
        vec![Outcome::Failed {
            job: gone,
            code: thumbd_jobs::Code::SourceFetchFailed
        }]
    );
}

#[tokio::test]
async fn a_local_run_finishes_the_job_from_memory() {
    let rig = rig(0, WorkerOptions::default()).await;
    let local = rig.worker.local();
    let record = rig.record_for_local_run("local").await;
    let run = local.try_run(&record, Bytes::from(png(400, 300))).unwrap();
    assert_eq!(run.await.unwrap(), LocalRun::Finished);
    let stored = rig.store.job(record.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.attempts), (JobStatus::Succeeded, 1));
    let result = stored.result.unwrap();
    assert!(rig.blobs.get(&result.blob_key).await.unwrap().is_some());
    assert_eq!(rig.queue.depth().await.unwrap(), Default::default());

    // A bad image finishes too: failed, with its code.
    let bad = rig.record_for_local_run("local-bad").await;
    let mut truncated = png(300, 300);
    truncated.truncate(truncated.len() / 2);
    let run = local.try_run(&bad, Bytes::from(truncated)).unwrap();
    assert_eq!(run.await.unwrap(), LocalRun::Finished);
    let stored = rig.store.job(bad.id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Failed);
    assert_eq!(stored.error.unwrap().code, "CorruptImage");
}

#[tokio::test]
async fn a_local_run_failing_transiently_hands_the_job_back() {
    let rig = rig(1, WorkerOptions::default()).await;
    let record = rig.record_for_local_run("local-flaky").await;
    let run = rig
        .worker
        .local()
        .try_run(&record, Bytes::from(png(200, 200)))
        .unwrap();
    assert_eq!(run.await.unwrap(), LocalRun::Unfinished);
    let stored = rig.store.job(record.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.attempts),
        (JobStatus::Queued, 1),
        "queued again, for the caller to queue"
    );
}

#[tokio::test]
async fn local_runs_take_at_most_prefetch_slots() {
    let options = WorkerOptions {
        concurrency: 1,
        prefetch: 2,
        ..WorkerOptions::default()
    };
    let rig = rig(0, options).await;
    let local = rig.worker.local();
    let image = Bytes::from(png(800, 600));
    let mut runs = Vec::new();
    for i in 0..2 {
        let record = rig.record_for_local_run(&format!("slot-{i}")).await;
        runs.push(local.try_run(&record, image.clone()).expect("a free slot"));
    }
    let third = rig.record_for_local_run("slot-2").await;
    assert!(
        local.try_run(&third, image.clone()).is_none(),
        "no slot while two runs are in flight"
    );
    for run in runs {
        assert_eq!(run.await.unwrap(), LocalRun::Finished);
    }
    let run = local.try_run(&third, image).expect("slots come back");
    assert_eq!(run.await.unwrap(), LocalRun::Finished);
}

#[tokio::test]
async fn a_duplicate_of_a_finished_job_drops_its_original() {
    // What is left when a local run overruns its wait: the API stores the original and
    // queues the job, and the run then finishes it. The queued duplicate cleans up.
    let rig = rig(0, WorkerOptions::default()).await;
    let record = rig.record_for_local_run("overrun").await;
    let image = png(300, 200);
    let run = rig
        .worker
        .local()
        .try_run(&record, Bytes::from(image.clone()))
        .unwrap();
    let key = BlobKey::original(record.id);
    rig.blobs.put(&key, Bytes::from(image)).await.unwrap();
    rig.queue.push(&record.message()).await.unwrap();
    assert_eq!(run.await.unwrap(), LocalRun::Finished);
    assert!(rig.blobs.get(&key).await.unwrap().is_some());

    let outcomes = rig.worker.drain().await;
    assert_eq!(outcomes, [Outcome::Skipped { job: record.id }]);
    assert_eq!(rig.blobs.get(&key).await.unwrap(), None);
    let stored = rig.store.job(record.id).await.unwrap().unwrap();
    assert_eq!((stored.status, stored.attempts), (JobStatus::Succeeded, 1));
}

#[path = "../../thumbcore/tests/common/hostile.rs"]
mod hostile;

#[tokio::test]
async fn a_job_over_the_time_limit_fails_with_processing_timeout() {
    let mut options = WorkerOptions::default();
    options.spec.limits.max_duration = Some(Duration::from_millis(1));
    let rig = rig(0, options).await;
    // 48 MP and 400 progressive scans: far more than a millisecond of decoding.
    let slow = rig
        .submit("slow", &hostile::many_scan_jpeg(8000, 6000, 400))
        .await;
    let outcomes = rig.worker.drain().await;
    assert_eq!(
        outcomes,
        vec![Outcome::Failed {
            job: slow,
            code: thumbd_jobs::Code::ProcessingTimeout
        }]
    );
    let record = rig.store.job(slow).await.unwrap().unwrap();
    assert_eq!(record.status, JobStatus::Failed);
    assert_eq!(record.error.unwrap().code, "ProcessingTimeout");
    assert_eq!(
        rig.queue.depth().await.unwrap().ready,
        0,
        "acked, not retried"
    );
}

#[tokio::test]
async fn a_job_costing_more_than_the_whole_budget_runs_alone() {
    // 2000×2000 progressive 4:4:4: 24 MB of coefficients against a 4 MB budget (its 1/4
    // output, 500×500 RGB, would fit). Admission clamps it to the whole budget.
    let rig = rig(
        0,
        WorkerOptions {
            pixel_budget: 1_000_000,
            ..WorkerOptions::default()
        },
    )
    .await;
    let first = rig
        .submit("big-1", &hostile::progressive_444_jpeg(2000, 2000))
        .await;
    let second = rig
        .submit("big-2", &hostile::progressive_444_jpeg(2000, 2000))
        .await;
    let outcomes = rig.worker.drain().await;
    assert_eq!(
        outcomes,
        vec![
            Outcome::Succeeded {
                job: first,
                current: true
            },
            Outcome::Succeeded {
                job: second,
                current: true
            }
        ]
    );
}
