//! The `Intake` on the embedded backends: what a create leaves behind, replays, and the
//! sweep that publishes what a dead process never did.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use thumbd_jobs::{
    Accepted, BlobKey, BlobStore, CreateJob, Environment, FsBlobStore, IdempotencyKey, Intake,
    IntakeParts, JobEvents, JobMessage, JobQueue, JobRecord, JobSource, JobStatus, MetaStore,
    Namespace, NewSource, Refused, SqliteDb, SqliteJobQueue, SqliteMetaStore, Tenant, ThumbnailId,
    Timestamp, WEBHOOK_LANE,
};

struct Rig {
    _dir: tempfile::TempDir,
    store: Arc<dyn MetaStore>,
    queue: Arc<dyn JobQueue>,
    blobs: Arc<dyn BlobStore>,
    intake: Intake,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::in_memory().await.unwrap();
    let store: Arc<dyn MetaStore> = Arc::new(SqliteMetaStore::new(db.clone()));
    let sqlite_queue = SqliteJobQueue::unlocked(db, Duration::from_secs(30));
    let webhook_queue: Arc<dyn JobQueue> = Arc::new(sqlite_queue.lane(WEBHOOK_LANE));
    let queue: Arc<dyn JobQueue> = Arc::new(sqlite_queue);
    let blobs: Arc<dyn BlobStore> = Arc::new(FsBlobStore::open(dir.path()).unwrap());
    let intake = Intake::new(IntakeParts {
        store: store.clone(),
        queue: queue.clone(),
        webhook_queue,
        blobs: blobs.clone(),
        events: JobEvents::new(),
        local_worker: None,
    });
    Rig {
        _dir: dir,
        store,
        queue,
        blobs,
        intake,
    }
}

fn namespace() -> Namespace {
    Namespace::new(Tenant::default(), Environment::Production)
}

fn create(id: &str, key: Option<&str>) -> CreateJob {
    CreateJob {
        namespace: namespace(),
        thumbnail_id: ThumbnailId::parse(id).unwrap(),
        source: NewSource::Bytes(Bytes::from_static(b"the checked image")),
        idempotency: key.map(|k| IdempotencyKey {
            client: "client-1".into(),
            tenant: Tenant::default(),
            environment: Environment::Production,
            key: k.into(),
        }),
        wait: Duration::ZERO,
        profile: None,
    }
}

#[tokio::test]
async fn an_answered_create_leaves_a_durable_original_and_a_queued_message() {
    let rig = rig().await;
    let Accepted::Pending(record) = rig.intake.create(create("a", None)).await.unwrap() else {
        panic!("nothing ran it")
    };
    assert_eq!(record.status, JobStatus::Queued);
    let original = rig.blobs.get(&BlobKey::original(record.id)).await.unwrap();
    assert_eq!(original.as_deref(), Some(&b"the checked image"[..]));
    let lease = rig
        .queue
        .lease(Duration::from_millis(100))
        .await
        .unwrap()
        .expect("the message");
    let message = JobMessage::parse(&lease.payload).unwrap();
    assert_eq!(message.job_id, Some(record.id));
    assert_eq!(rig.store.job(record.id).await.unwrap(), Some(record));
}

#[tokio::test]
async fn a_key_replays_its_job_and_refuses_another_thumbnail() {
    let rig = rig().await;
    let first = rig.intake.create(create("a", Some("k1"))).await.unwrap();
    let key = create("a", Some("k1")).idempotency.unwrap();
    let a = ThumbnailId::parse("a").unwrap();
    let again = rig.intake.replay(&key, &a, Duration::ZERO).await.unwrap();
    assert_eq!(again, Some(Accepted::Replayed(first.record().clone())));
    // The same key for another thumbnail: the client mixed its keys up.
    let b = ThumbnailId::parse("b").unwrap();
    match rig.intake.replay(&key, &b, Duration::ZERO).await {
        Err(Refused::KeyReused(other)) => assert_eq!(other, a),
        other => panic!("{other:?}"),
    }
    // A create racing past the replay check is answered with the first job too.
    let raced = rig.intake.create(create("a", Some("k1"))).await.unwrap();
    assert_eq!(raced, Accepted::Replayed(first.record().clone()));
    // Another key is another job.
    let unknown = create("a", Some("k2")).idempotency.unwrap();
    assert_eq!(
        rig.intake
            .replay(&unknown, &a, Duration::ZERO)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn the_sweep_publishes_what_a_dead_process_never_did() {
    let rig = rig().await;
    // A record written two minutes ago whose message never went out (its process died).
    let message = JobMessage {
        job_id: Some(thumbd_jobs::JobId::new()),
        tenant: Tenant::default(),
        environment: Environment::Production,
        thumbnail_id: ThumbnailId::parse("orphan").unwrap(),
        source: JobSource::Url {
            url: "https://example.invalid/x.png".into(),
        },
        reply_to: None,
        profile: None,
    };
    let id = message.job_id.unwrap();
    let record = JobRecord::queued(
        id,
        &message,
        Timestamp::now().minus(Duration::from_secs(120)),
    );
    rig.store.create_job(&record).await.unwrap();
    assert_eq!(rig.queue.depth().await.unwrap().ready, 0);

    rig.intake.sweep().await;
    let lease = rig
        .queue
        .lease(Duration::from_millis(100))
        .await
        .unwrap()
        .expect("republished");
    let sent = JobMessage::parse(&lease.payload).unwrap();
    assert_eq!(sent.job_id, Some(id));
    // Marked published: the next sweep leaves it alone.
    rig.intake.sweep().await;
    assert_eq!(rig.queue.depth().await.unwrap().ready, 0);
}
