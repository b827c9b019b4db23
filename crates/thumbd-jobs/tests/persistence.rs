//! What the embedded backends keep across a restart (the SIGKILL case is in the root
//! black-box tests; here the process stays, the handles go).

use std::time::Duration;

use thumbd_jobs::{
    Environment, Error, JobMessage, JobQueue, JobSource, SqliteDb, SqliteJobQueue, ThumbnailId,
};

fn message(id: &str) -> JobMessage {
    JobMessage {
        tenant: thumbd_jobs::Tenant::default(),
        job_id: None,
        environment: Environment::Production,
        thumbnail_id: ThumbnailId::parse(id).unwrap(),
        source: JobSource::Url {
            url: "https://example.invalid/x.png".into(),
        },
        reply_to: None,
    }
}

#[tokio::test]
async fn queue_survives_reopen_and_releases_old_leases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("thumbd.db");
    let lock = dir.path().join("queue.lock");
    let visibility = Duration::from_secs(600);
    {
        let db = SqliteDb::open(&path).await.unwrap();
        let queue = SqliteJobQueue::open(db.clone(), &lock, visibility)
            .await
            .unwrap();
        queue.push(&message("leased")).await.unwrap();
        queue.push(&message("waiting")).await.unwrap();
        let lease = queue
            .lease(Duration::from_millis(50))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            JobMessage::parse(&lease.payload).unwrap(),
            message("leased")
        );

        // A second process would be refused while this one holds the lock.
        let db2 = SqliteDb::open(&path).await.unwrap();
        let err = SqliteJobQueue::open(db2, &lock, visibility)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Locked(_)), "{err}");
        db.close().await;
        // `queue` drops here, like a killed process: the lease is never settled.
    }
    let db = SqliteDb::open(&path).await.unwrap();
    let queue = SqliteJobQueue::open(db, &lock, visibility).await.unwrap();
    let mut seen = Vec::new();
    while let Some(lease) = queue.lease(Duration::from_millis(50)).await.unwrap() {
        let m = JobMessage::parse(&lease.payload).unwrap();
        seen.push((m.thumbnail_id.to_string(), lease.deliveries));
        assert!(queue.ack(&lease).await.unwrap());
    }
    seen.sort();
    assert_eq!(seen, vec![("leased".into(), 2), ("waiting".into(), 1)]);
}

#[tokio::test]
async fn migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("thumbd.db");
    let db = SqliteDb::open(&path).await.unwrap();
    assert_eq!(db.migrate().await.unwrap(), 0, "open already migrated");
    db.close().await;
    let db = SqliteDb::open(&path).await.unwrap();
    assert_eq!(db.migrate().await.unwrap(), 0);
}
