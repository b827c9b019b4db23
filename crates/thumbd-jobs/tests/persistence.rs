//! What the embedded backends keep across a restart (the SIGKILL case is in the root
//! black-box tests; here the process stays, the handles go).

use std::time::Duration;

use sqlx::Connection as _;

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
        profile: None,
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

/// An applied migration whose file changed, or one this binary does not know (a newer thumbd
/// migrated the database), stops the open instead of running on a schema it cannot vouch for.
#[tokio::test]
async fn a_schema_this_binary_did_not_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("thumbd.db");
    let db = SqliteDb::open(&path).await.unwrap();
    assert_eq!(db.migrated_at_open(), 4, "a new file gets the whole schema");
    db.close().await;

    let edit = |sql: &'static str| {
        let path = path.clone();
        async move {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    };
    edit(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'from the future', 1, x'00', 0)",
    )
    .await;
    let err = SqliteDb::open(&path).await.unwrap_err().to_string();
    assert!(err.contains("schema") && err.contains("99"), "{err}");

    edit("DELETE FROM _sqlx_migrations WHERE version = 99").await;
    edit("UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1").await;
    let err = SqliteDb::open(&path).await.unwrap_err().to_string();
    assert!(err.contains("schema") && err.contains('1'), "{err}");
}
