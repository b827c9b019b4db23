//! `PgMetaStore` against the conformance suite and against itself: several stores (pools, as
//! several processes would have) racing on one schema. Each test has a schema of its own.
//!
//! PostgreSQL comes from `THUMBD_TEST_DATABASE_URL` (default: the local `test` database);
//! without one the tests print SKIP, or fail with `THUMBD_REQUIRE_SERVICES=1`.

mod support;

use std::time::Duration;
use thumbd_jobs::JobStore as _;
use thumbd_jobs::ThumbnailStore as _;

use support::{queued, result_for, schema, started};
use thumbd_jobs::{
    BlobKey, Environment, JobFailure, JobSource, JobStatus, MetaStore, Timestamp, conformance,
};
use thumbd_postgres::PgMetaStore;

#[tokio::test]
async fn pg_meta_store() {
    let Some(schema) = schema("pg_meta_store").await else {
        return;
    };
    let store = schema.store().await.unwrap();
    conformance::meta_store(&store).await;
    store.close().await;
    schema.remove().await.unwrap();
}

#[tokio::test]
async fn migrations_run_once() {
    let Some(schema) = schema("migrations_run_once").await else {
        return;
    };
    // Three processes starting at once on an empty schema: one migrates, none fails.
    let pools = [(); 3].map(|()| async {
        let pool = sqlx::PgPool::connect_with(schema.connect_options().unwrap())
            .await
            .unwrap();
        PgMetaStore::from_pool(pool)
    });
    let stores = futures_util::future::join_all(pools).await;
    let ran = futures_util::future::join_all(stores.iter().map(PgMetaStore::migrate)).await;
    let mut ran: Vec<usize> = ran.into_iter().map(Result::unwrap).collect();
    ran.sort_unstable();
    assert_eq!(ran, [0, 0, 4], "one process applies every migration");

    // Again: a no-op, and connect (which migrates) too.
    assert_eq!(stores[0].migrate().await.unwrap(), 0);
    let again = schema.store().await.unwrap();
    assert_eq!(again.migrate().await.unwrap(), 0);
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(again.pool())
            .await
            .unwrap();
    assert_eq!(versions, [1, 2, 3, 4]);
    again.ping().await.unwrap();
    for store in stores.iter().chain([&again]) {
        store.close().await;
    }
    schema.remove().await.unwrap();
}

#[tokio::test]
async fn test_schema_url_selects_the_schema() {
    let Some(schema) = schema("test_schema_url_selects_the_schema").await else {
        return;
    };
    let store = PgMetaStore::connect(&schema.url()).await.unwrap();
    let current: String = sqlx::query_scalar("SELECT current_schema()::text")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(current, schema.name());
    store.close().await;
    schema.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_finishes_keep_the_later_job_current() {
    let Some(schema) = schema("racing_finishes_keep_the_later_job_current").await else {
        return;
    };
    // Two processes: two pools on one schema.
    let (a, b) = (schema.store().await.unwrap(), schema.store().await.unwrap());
    let now = Timestamp::now();
    let mut older_first = 0;
    for round in 0..20u64 {
        // A fresh thumbnail (no row yet to lock) or one with a current record.
        let id = format!("race-{round}");
        let first = if round % 2 == 1 {
            let first = queued(&id, now);
            started(&a, &first).await;
            let result = result_for(first.id);
            a.finish_succeeded(first.id, &result, now).await.unwrap();
            Some(result.blob_key)
        } else {
            None
        };
        let older = queued(&id, now.plus(Duration::from_millis(1)));
        let newer = queued(&id, now.plus(Duration::from_millis(2)));
        started(&a, &older).await;
        started(&b, &newer).await;
        let (older_result, newer_result) = (result_for(older.id), result_for(newer.id));
        // Alternate which store runs which job, so either may commit first.
        let (x, y) = if round % 4 < 2 { (&a, &b) } else { (&b, &a) };
        let (fin_older, fin_newer) = tokio::join!(
            x.finish_succeeded(older.id, &older_result, now),
            y.finish_succeeded(newer.id, &newer_result, now),
        );
        let (fin_older, fin_newer) = (fin_older.unwrap(), fin_newer.unwrap());
        assert!(fin_older.applied && fin_newer.applied && fin_newer.current);
        let thumb = a
            .thumbnail(
                &thumbd_jobs::Namespace::default_tenant(Environment::Development),
                &newer.thumbnail_id,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (thumb.job_id, &thumb.result),
            (newer.id, &newer_result),
            "round {round}"
        );
        // Whatever the order, every blob not served is orphaned exactly once.
        let mut orphaned = [fin_older.orphaned, fin_newer.orphaned].concat();
        orphaned.sort();
        let mut expected = vec![older_result.blob_key];
        expected.extend(first);
        expected.sort();
        assert_eq!(orphaned, expected, "round {round}");
        older_first += usize::from(fin_older.current);
    }
    eprintln!("the older job committed first in {older_first} of 20 rounds");
    a.close().await;
    b.close().await;
    schema.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_one_job_applies_it_once() {
    let Some(schema) = schema("racing_one_job_applies_it_once").await else {
        return;
    };
    let (a, b) = (schema.store().await.unwrap(), schema.store().await.unwrap());
    let now = Timestamp::now();
    for round in 0..20 {
        // A redelivery: two workers finish the same job, with different bytes.
        let job = queued(&format!("twice-{round}"), now);
        started(&a, &job).await;
        let mine = result_for(job.id);
        let mut other = mine.clone();
        other.blob_key = BlobKey::thumbnail(&format!("{:064x}", 7), job.id);
        let (fa, fb) = tokio::join!(
            a.finish_succeeded(job.id, &mine, now),
            b.finish_succeeded(job.id, &other, now),
        );
        let (fa, fb) = (fa.unwrap(), fb.unwrap());
        assert!(fa.applied != fb.applied, "round {round}: {fa:?} {fb:?}");
        let winner = if fa.applied { mine } else { other };
        let done = b.job(job.id).await.unwrap().unwrap();
        assert_eq!(
            (done.status, done.result.as_ref()),
            (JobStatus::Succeeded, Some(&winner))
        );
        let thumb = b
            .thumbnail(
                &thumbd_jobs::Namespace::default_tenant(Environment::Development),
                &job.thumbnail_id,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(thumb.result, winner, "round {round}");
    }
    a.close().await;
    b.close().await;
    schema.remove().await.unwrap();
}

#[tokio::test]
async fn purge_finished_jobs() {
    let Some(schema) = schema("purge_finished_jobs").await else {
        return;
    };
    let store = schema.store().await.unwrap();
    let t0 = Timestamp::now();
    let at = |ms| t0.plus(Duration::from_millis(ms));
    let failure = JobFailure {
        code: thumbd_jobs::Code::CorruptImage,
        message: "bad".into(),
    };

    let served = queued("kept", at(0));
    let replaced = queued("replaced", at(0));
    let replacing = queued("replaced", at(1));
    let failed = queued("failed", at(0));
    let late = queued("late", at(0));
    let pending = queued("pending", at(0));
    for job in [&served, &replaced, &replacing, &failed, &late, &pending] {
        started(&store, job).await;
    }
    for job in [&served, &replaced, &replacing] {
        store
            .finish_succeeded(job.id, &result_for(job.id), at(10))
            .await
            .unwrap();
    }
    assert!(
        store
            .finish_failed(failed.id, &failure, at(10))
            .await
            .unwrap()
    );
    store
        .finish_succeeded(late.id, &result_for(late.id), at(30))
        .await
        .unwrap();

    // Finished before `before` and not served: the replaced and the failed jobs.
    assert_eq!(store.purge_finished_jobs(at(20)).await.unwrap(), 2);
    for (job, kept) in [
        (&served, true),
        (&replaced, false),
        (&replacing, true),
        (&failed, false),
        (&late, true),
        (&pending, true),
    ] {
        assert_eq!(
            store.job(job.id).await.unwrap().is_some(),
            kept,
            "{}",
            job.thumbnail_id
        );
    }
    assert_eq!(store.purge_finished_jobs(at(20)).await.unwrap(), 0);

    // A deleted thumbnail no longer protects its job.
    store
        .delete_thumbnail(
            &thumbd_jobs::Namespace::default_tenant(Environment::Development),
            &served.thumbnail_id,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.purge_finished_jobs(at(20)).await.unwrap(), 1);
    assert_eq!(store.job(served.id).await.unwrap(), None);
    store.close().await;
    schema.remove().await.unwrap();
}

#[tokio::test]
async fn strings_postgres_text_cannot_hold() {
    let Some(schema) = schema("strings_postgres_text_cannot_hold").await else {
        return;
    };
    let store = schema.store().await.unwrap();
    let now = Timestamp::now();
    // NUL in a thumbnailId, a replyTo and a URL source round-trips exactly.
    let mut job = queued("nul\0id", now);
    job.reply_to = Some("reply\0to".into());
    job.source = JobSource::Url {
        url: "https://example.invalid/\0".into(),
    };
    assert!(store.create_job(&job).await.unwrap());
    assert_eq!(store.job(job.id).await.unwrap().as_ref(), Some(&job));

    // A failure message keeps everything but the NUL.
    store.start_job(job.id, now).await.unwrap();
    let failure = JobFailure {
        code: thumbd_jobs::Code::SourceFetchFailed,
        message: "cannot fetch \0".into(),
    };
    assert!(store.finish_failed(job.id, &failure, now).await.unwrap());
    let failed = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(
        failed.error.map(|e| e.message).as_deref(),
        Some("cannot fetch \u{FFFD}")
    );
    store.close().await;
    schema.remove().await.unwrap();
}

#[tokio::test]
async fn finished_jobs_are_announced() {
    let Some(schema) = schema("finished_jobs_are_announced").await else {
        return;
    };
    let store = schema.store().await.unwrap();
    let events = thumbd_jobs::JobEvents::new();
    let mut finished = events.subscribe();
    store.forward_finished(events.clone());
    // Let the listener start before the announcements.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut heard = async |id: thumbd_jobs::JobId| {
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                let done = finished.recv().await.unwrap();
                if done.id == id {
                    return done.record;
                }
            }
        })
        .await
        .expect("no announcement within 5 s")
    };
    let now = Timestamp::now();

    // Succeeded: announced by id; a waiter reads the record, which is committed by then.
    let job = queued("ann-\u{e9}t\u{e9}", now);
    started(&store, &job).await;
    let result = result_for(job.id);
    assert!(
        store
            .finish_succeeded(job.id, &result, now)
            .await
            .unwrap()
            .applied
    );
    assert_eq!(heard(job.id).await, None, "the id alone");
    let stored = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(stored.status, thumbd_jobs::JobStatus::Succeeded);

    // Failed, from `queued`; a second finish changes nothing.
    let job = queued("announced-failed", now);
    assert!(store.create_job(&job).await.unwrap());
    let failure = thumbd_jobs::JobFailure {
        code: thumbd_jobs::Code::SourceFetchFailed,
        message: "cannot fetch \"it\"".into(),
    };
    assert!(store.finish_failed(job.id, &failure, now).await.unwrap());
    assert_eq!(heard(job.id).await, None);
    assert!(!store.finish_failed(job.id, &failure, now).await.unwrap());

    store.close().await;
    schema.remove().await.unwrap();
}
