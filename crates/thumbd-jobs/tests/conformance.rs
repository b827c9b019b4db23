//! The embedded backends against the conformance suite, on real files.

use std::time::Duration;

use thumbd_jobs::{FsBlobStore, SqliteDb, SqliteJobQueue, SqliteMetaStore, conformance};

#[tokio::test]
async fn sqlite_meta_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(&dir.path().join("thumbd.db")).await.unwrap();
    conformance::meta_store(&SqliteMetaStore::new(db)).await;
}

#[tokio::test]
async fn sqlite_job_queue() {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(&dir.path().join("thumbd.db")).await.unwrap();
    let queue = SqliteJobQueue::open(db, &dir.path().join("queue.lock"), Duration::from_secs(30))
        .await
        .unwrap();
    conformance::job_queue(&queue).await;
}

#[tokio::test]
async fn sqlite_job_queue_lease_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(&dir.path().join("thumbd.db")).await.unwrap();
    let visibility = Duration::from_millis(300);
    let queue = SqliteJobQueue::unlocked(db, visibility);
    conformance::job_queue_lease_timeout(&queue, visibility).await;
}

#[tokio::test]
async fn fs_blob_store() {
    let dir = tempfile::tempdir().unwrap();
    conformance::blob_store(&FsBlobStore::open(dir.path().join("blobs")).unwrap()).await;
}

#[tokio::test]
async fn fs_blob_store_process_durability() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = FsBlobStore::open(dir.path().join("blobs"))
        .unwrap()
        .with_durability(thumbd_jobs::Durability::Process);
    conformance::blob_store(&blobs).await;
}

#[tokio::test]
async fn sqlite_meta_store_process_durability() {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open_with(
        &dir.path().join("thumbd.db"),
        thumbd_jobs::Durability::Process,
    )
    .await
    .unwrap();
    conformance::meta_store(&SqliteMetaStore::new(db)).await;
}
