//! The conformance suite: what every backend of [`MetaStore`], [`JobQueue`] and [`BlobStore`]
//! must do. Each backend's tests call these against a real instance (SQLite, files here;
//! PostgreSQL, RabbitMQ and S3 in their crates). They panic with a message on the first
//! broken promise.

mod associations;
mod listing;
mod webhooks;

use std::time::Duration;

use bytes::Bytes;

use crate::blob::BlobStore;
use crate::ids::{BlobKey, Environment, JobId, Namespace, Tenant, ThumbnailId};
use crate::job::{JobFailure, JobMessage, JobRecord, JobResult, JobSource, JobStatus};
use crate::queue::JobQueue;
use crate::store::MetaStore;
use crate::timestamp::Timestamp;

fn message(env: Environment, id: &str) -> JobMessage {
    JobMessage {
        job_id: Some(JobId::new()),
        tenant: Tenant::default(),
        environment: env,
        thumbnail_id: ThumbnailId::parse(id).unwrap(),
        source: JobSource::Url {
            url: format!("https://example.invalid/{}", id.len()),
        },
        reply_to: None,
        profile: None,
    }
}

/// A result of two renditions: the main PNG and a WebP, each with its own blob.
fn result_for(job: JobId, width: u32) -> JobResult {
    let sha = format!("{:064x}", u128::from(width) * 7919);
    let webp_sha = format!("{:064x}", u128::from(width) * 7907);
    let rendition = |format: &str, sha: &str| crate::job::RenditionResult {
        size: 330,
        width,
        height: 100,
        format: format.into(),
        spec: format!("330:{format}"),
        content_type: format!("image/{format}"),
        bytes: 1234,
        etag: sha.to_owned(),
        blob_key: BlobKey::thumbnail(sha, job),
        budget: "fits".into(),
        status: crate::job::RenditionStatus::Ready,
        source_key: None,
    };
    JobResult {
        width,
        height: 100,
        bytes: 1234,
        content_type: "image/png".into(),
        etag: sha.clone(),
        blob_key: BlobKey::thumbnail(&sha, job),
        budget: "fits".into(),
        // One of the results the checks store is animated: the field survives the store.
        animated: width == 330,
        placeholder: (width == 330).then(|| crate::job::Placeholder {
            thumbhash: "3OcRJYB4d3h/iIeHeEh3eIhw+j3A".into(),
            blurhash: "LEHV6nWB2yk8pyo0adR*.7kCMdnj".into(),
            average_color: "#7f007f".into(),
        }),
        profile: Some("web".into()),
        source: Some(crate::job::SourceInfo {
            width: 1000,
            height: 300,
            format: "jpeg".into(),
            animated: width == 330,
        }),
        renditions: vec![rendition("webp", &webp_sha), rendition("png", &sha)],
    }
}

fn sorted(mut keys: Vec<BlobKey>) -> Vec<BlobKey> {
    keys.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    keys
}

/// Runs every [`MetaStore`] check on `store`, which must be empty: jobs and thumbnails, then
/// idempotency keys, uploads and contexts.
pub async fn meta_store(store: &dyn MetaStore) {
    store.ping().await.expect("ping");
    let env = Environment::Development;
    let now = Timestamp::now();

    // Create, read back, no duplicate.
    let msg = message(env, "life-cycle");
    let job = JobRecord::queued(msg.job_id.unwrap(), &msg, now);
    assert!(store.create_job(&job).await.unwrap(), "create_job");
    assert!(
        !store.create_job(&job).await.unwrap(),
        "create_job twice must be a no-op"
    );
    assert_eq!(
        store.job(job.id).await.unwrap().as_ref(),
        Some(&job),
        "job round trip"
    );
    assert_eq!(store.job(JobId::new()).await.unwrap(), None, "unknown job");

    // Unpublished until marked; only jobs created before the cut-off.
    let later = now.plus(Duration::from_millis(1));
    let unpublished = |jobs: Vec<JobRecord>| jobs.iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        unpublished(store.unpublished_jobs(later, 10).await.unwrap()),
        [job.id],
        "a new job is unpublished"
    );
    assert_eq!(
        store.unpublished_jobs(now, 10).await.unwrap(),
        [],
        "created at the cut-off is not before it"
    );
    let other_msg = message(env, "published-later");
    let other = JobRecord::queued(
        other_msg.job_id.unwrap(),
        &other_msg,
        now.minus(Duration::from_millis(5)),
    );
    assert!(store.create_job(&other).await.unwrap());
    assert_eq!(
        unpublished(store.unpublished_jobs(later, 10).await.unwrap()),
        [other.id, job.id],
        "oldest first"
    );
    assert_eq!(
        unpublished(store.unpublished_jobs(later, 1).await.unwrap()),
        [other.id],
        "limit"
    );
    store.mark_published(other.id).await.unwrap();
    assert_eq!(
        unpublished(store.unpublished_jobs(later, 10).await.unwrap()),
        [job.id],
        "mark_published"
    );
    store.mark_published_many(&[]).await.unwrap();
    store
        .mark_published_many(&[job.id, other.id, JobId::new()])
        .await
        .unwrap();
    assert_eq!(
        store.unpublished_jobs(later, 10).await.unwrap(),
        [],
        "mark_published_many"
    );
    // A job started without ever being published (a local run whose process died) is
    // swept up too, until it finishes.
    let run_msg = message(env, "run-locally");
    let run = JobRecord::queued(run_msg.job_id.unwrap(), &run_msg, now);
    assert!(store.create_job(&run).await.unwrap());
    store.start_job(run.id, now).await.unwrap();
    assert_eq!(
        unpublished(store.unpublished_jobs(later, 10).await.unwrap()),
        [run.id],
        "a started, unpublished job"
    );
    let failure = JobFailure {
        code: thumbd_codes::Code::CorruptImage,
        message: "no".into(),
    };
    assert!(store.finish_failed(run.id, &failure, now).await.unwrap());
    store.make_durable(run.id).await.unwrap();
    assert_eq!(
        store.unpublished_jobs(later, 10).await.unwrap(),
        [],
        "a finished job is never swept"
    );
    assert_eq!(
        store.job(run.id).await.unwrap().map(|j| j.status),
        Some(JobStatus::Failed),
        "make_durable changes nothing visible"
    );

    // Attempts count; requeue; start again.
    let started = store
        .start_job(job.id, now)
        .await
        .unwrap()
        .expect("start_job");
    assert_eq!(
        (started.status, started.attempts),
        (JobStatus::Processing, 1)
    );
    assert_eq!(started.started_at, Some(now));
    store.requeue_job(job.id).await.unwrap();
    assert_eq!(
        store.job(job.id).await.unwrap().unwrap().status,
        JobStatus::Queued
    );
    let started = store.start_job(job.id, now).await.unwrap().unwrap();
    assert_eq!(started.attempts, 2, "attempts count every start");
    assert_eq!(store.start_job(JobId::new(), now).await.unwrap(), None);

    // Success: job finished, thumbnail current; a second finish changes nothing.
    let result = result_for(job.id, 330);
    let fin = store.finish_succeeded(job.id, &result, now).await.unwrap();
    assert!(
        fin.applied && fin.current && fin.orphaned.is_empty(),
        "{fin:?}"
    );
    let done = store.job(job.id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.result.as_ref(), Some(&result));
    assert_eq!(done.finished_at, Some(now));
    assert_eq!(
        done,
        started.clone().succeeded(result.clone(), now),
        "the stored record is the started one, succeeded (what workers announce)"
    );
    let again = store.finish_succeeded(job.id, &result, now).await.unwrap();
    assert!(!again.applied, "a redelivered job must not finish twice");
    let failure = JobFailure {
        code: thumbd_codes::Code::CorruptImage,
        message: "late".into(),
    };
    assert!(!store.finish_failed(job.id, &failure, now).await.unwrap());
    let finished = store.start_job(job.id, now).await.unwrap().unwrap();
    assert_eq!(
        finished.status,
        JobStatus::Succeeded,
        "start_job must not reopen a job"
    );
    let thumb = store
        .thumbnail(&Namespace::default_tenant(env), &msg.thumbnail_id)
        .await
        .unwrap()
        .expect("thumbnail");
    assert_eq!((thumb.job_id, &thumb.result), (job.id, &result));

    // Environments are separate namespaces.
    assert_eq!(
        store
            .thumbnail(
                &Namespace::default_tenant(Environment::Production),
                &msg.thumbnail_id
            )
            .await
            .unwrap(),
        None
    );

    // Replace: the newer job wins, whatever order they finish in; a failed one changes nothing.
    let older = queued(
        message(env, "life-cycle"),
        now.plus(Duration::from_millis(1)),
    );
    let newer = queued(
        message(env, "life-cycle"),
        now.plus(Duration::from_millis(2)),
    );
    let failing = queued(
        message(env, "life-cycle"),
        now.plus(Duration::from_millis(3)),
    );
    for j in [&older, &newer, &failing] {
        assert!(store.create_job(j).await.unwrap());
        store.start_job(j.id, now).await.unwrap();
    }
    let newer_result = result_for(newer.id, 200);
    let fin = store
        .finish_succeeded(newer.id, &newer_result, now)
        .await
        .unwrap();
    assert!(fin.applied && fin.current);
    assert_eq!(
        sorted(fin.orphaned),
        sorted(result.blob_keys()),
        "every blob of the replaced set is orphaned"
    );
    assert_eq!(result.blob_keys().len(), 2);
    let older_result = result_for(older.id, 100);
    let fin = store
        .finish_succeeded(older.id, &older_result, now)
        .await
        .unwrap();
    assert!(
        fin.applied && !fin.current,
        "an older job must not replace a newer one"
    );
    assert_eq!(sorted(fin.orphaned), sorted(older_result.blob_keys()));
    assert!(
        store
            .finish_failed(failing.id, &failure, now)
            .await
            .unwrap()
    );
    let failed = store.job(failing.id).await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.error.as_ref()),
        (JobStatus::Failed, Some(&failure))
    );
    let thumb = store
        .thumbnail(&Namespace::default_tenant(env), &msg.thumbnail_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        thumb.result, newer_result,
        "a failed replace keeps the current thumbnail"
    );

    // Delete.
    let deleted = store
        .delete_thumbnail(&Namespace::default_tenant(env), &msg.thumbnail_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        deleted.result, newer_result,
        "delete returns the removed record"
    );
    assert_eq!(
        store
            .delete_thumbnail(&Namespace::default_tenant(env), &msg.thumbnail_id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .thumbnail(&Namespace::default_tenant(env), &msg.thumbnail_id)
            .await
            .unwrap(),
        None
    );

    // Any characters in an id: it is a key, not a path.
    for odd in ["../../etc/passwd", "a\0b", "ünï 🖼/?#%", &"x".repeat(255)] {
        let m = message(Environment::Production, odd);
        let j = JobRecord::queued(m.job_id.unwrap(), &m, now);
        store.create_job(&j).await.unwrap();
        store.start_job(j.id, now).await.unwrap();
        store
            .finish_succeeded(j.id, &result_for(j.id, 90), now)
            .await
            .unwrap();
        let t = store
            .thumbnail(
                &Namespace::default_tenant(Environment::Production),
                &m.thumbnail_id,
            )
            .await
            .unwrap();
        assert_eq!(
            t.map(|t| t.thumbnail_id),
            Some(m.thumbnail_id.clone()),
            "{odd:?}"
        );
    }

    // Purge finished jobs, but never the one a thumbnail points at.
    let later = now.plus(Duration::from_secs(1));
    let purged = store.purge_finished_jobs(later).await.unwrap();
    assert!(purged >= 4, "purged {purged}");
    assert_eq!(store.job(older.id).await.unwrap(), None);
    let nul = ThumbnailId::parse("a\0b").unwrap();
    let served = store
        .thumbnail(&Namespace::default_tenant(Environment::Production), &nul)
        .await
        .unwrap()
        .unwrap();
    assert!(store.job(served.job_id).await.unwrap().is_some());

    // Idempotency keys, uploads and contexts.
    associations::idempotency(store, now).await;
    associations::uploads(store, now).await;
    associations::contexts(store, now).await;
    associations::tenants(store, now).await;
    listing::listing(store, now).await;
    webhooks::webhooks(store, now).await;
    renditions(store, now).await;
}

/// A succeeded job of thumbnail `id` whose result has one pending AVIF rendition besides
/// `result_for`'s two, accepted at `at`.
async fn with_pending(store: &dyn MetaStore, id: &str, at: Timestamp) -> (JobId, JobResult) {
    let job = queued(message(Environment::Production, id), at);
    assert!(store.create_job(&job).await.unwrap());
    store.start_job(job.id, at).await.unwrap();
    let mut result = result_for(job.id, 200);
    result.renditions.push(crate::job::RenditionResult {
        format: "avif".into(),
        spec: "330:avif:60".into(),
        content_type: "image/avif".into(),
        status: crate::job::RenditionStatus::Pending,
        source_key: Some(BlobKey::thumbnail(&format!("{:064x}", 5), job.id)),
        ..result.renditions[0].clone()
    });
    let fin = store.finish_succeeded(job.id, &result, at).await.unwrap();
    assert!(fin.applied && fin.current);
    (job.id, result)
}

/// `finish_renditions`: pending renditions become ready once, in the job and (while
/// current) the thumbnail; their sources are freed and referenced until then.
async fn renditions(store: &dyn MetaStore, now: Timestamp) {
    let namespace = Namespace::default_tenant(Environment::Production);
    let id = ThumbnailId::parse("renditions").unwrap();
    let (job, result) = with_pending(store, "renditions", now).await;
    let source = result.renditions[2].source_key.clone().unwrap();
    assert!(result.has_pending());
    assert!(
        result.blob_keys().contains(&source),
        "a pending rendition's source is the result's until it is made"
    );
    let made = crate::job::RenditionResult {
        etag: format!("{:064x}", 6),
        blob_key: BlobKey::thumbnail(&format!("{:064x}", 6), job),
        status: crate::job::RenditionStatus::Ready,
        source_key: None,
        ..result.renditions[2].clone()
    };
    let done = store
        .finish_renditions(job, std::slice::from_ref(&made), now)
        .await
        .unwrap();
    assert_eq!(
        done,
        crate::store::RenditionsFinished {
            applied: true,
            current: true,
            freed: vec![source.clone()],
        }
    );
    let stored = store.job(job).await.unwrap().unwrap().result.unwrap();
    assert_eq!(stored.renditions[2], made);
    assert!(!stored.has_pending() && !stored.blob_keys().contains(&source));
    let served = store.thumbnail(&namespace, &id).await.unwrap().unwrap();
    assert_eq!(served.result, stored, "the current set shows it too");
    let again = store
        .finish_renditions(job, std::slice::from_ref(&made), now)
        .await
        .unwrap();
    assert!(!again.applied, "a redelivery changes nothing: {again:?}");

    // Replaced meanwhile: the old job's record changes, the thumbnail does not.
    let (old, old_result) = with_pending(store, "renditions-replaced", now).await;
    let (newer, _) = with_pending(
        store,
        "renditions-replaced",
        now.plus(Duration::from_millis(1)),
    )
    .await;
    let made = crate::job::RenditionResult {
        status: crate::job::RenditionStatus::Failed,
        source_key: None,
        ..old_result.renditions[2].clone()
    };
    let done = store.finish_renditions(old, &[made], now).await.unwrap();
    assert!(done.applied && !done.current, "{done:?}");
    let served = store
        .thumbnail(
            &namespace,
            &ThumbnailId::parse("renditions-replaced").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(served.job_id, newer);
    assert!(served.result.has_pending());

    // Unknown or unfinished jobs: nothing.
    let nothing = store
        .finish_renditions(JobId::new(), &[], now)
        .await
        .unwrap();
    assert!(!nothing.applied);
}

/// Runs the [`JobQueue`] delivery checks on `queue`, which must be empty and unshared.
pub async fn job_queue(queue: &dyn JobQueue) {
    let short = Duration::from_millis(50);
    assert_eq!(queue.lease(short).await.unwrap(), None, "empty queue");

    // FIFO, one delivery at a time, ack removes.
    let a = message(Environment::Development, "a");
    let b = message(Environment::Development, "b");
    queue.push(&a).await.unwrap();
    queue.push(&b).await.unwrap();
    let la = queue.lease(short).await.unwrap().expect("lease a");
    assert_eq!(JobMessage::parse(&la.payload).unwrap(), a);
    assert_eq!((la.deliveries, la.retries), (1, 0));
    let lb = queue.lease(short).await.unwrap().expect("lease b");
    assert_eq!(JobMessage::parse(&lb.payload).unwrap(), b);
    assert_eq!(
        queue.lease(short).await.unwrap(),
        None,
        "leased messages are invisible"
    );
    let depth = queue.depth().await.unwrap();
    assert_eq!((depth.ready, depth.leased), (0, 2), "{depth:?}");
    assert!(queue.heartbeat(&la).await.unwrap());
    assert!(queue.ack(&la).await.unwrap());
    assert!(
        !queue.ack(&la).await.unwrap(),
        "a settled lease cannot be acked again"
    );
    assert!(!queue.heartbeat(&la).await.unwrap());

    // Retry with a delay: invisible until the delay passes, counted as a retry, not as a
    // delivery.
    assert!(queue.retry(&lb, Duration::from_millis(300)).await.unwrap());
    assert!(
        !queue.ack(&lb).await.unwrap(),
        "a retried lease is no longer current"
    );
    assert_eq!(queue.depth().await.unwrap().delayed, 1);
    assert_eq!(
        queue.lease(short).await.unwrap(),
        None,
        "retry delay not over"
    );
    let lb2 = queue
        .lease(Duration::from_secs(3))
        .await
        .unwrap()
        .expect("retried message");
    assert_eq!(JobMessage::parse(&lb2.payload).unwrap(), b);
    assert_eq!((lb2.deliveries, lb2.retries), (1, 1));
    assert!(queue.retry(&lb2, Duration::ZERO).await.unwrap());
    let lb2 = queue
        .lease(Duration::from_secs(3))
        .await
        .unwrap()
        .expect("retried again");
    assert_eq!((lb2.deliveries, lb2.retries), (1, 2));
    // Put back unprocessed: nothing counted.
    assert!(queue.put_back(&lb2, Duration::ZERO).await.unwrap());
    assert!(
        !queue.ack(&lb2).await.unwrap(),
        "a lease put back is no longer current"
    );
    let lb2 = queue
        .lease(Duration::from_secs(3))
        .await
        .unwrap()
        .expect("put back");
    assert_eq!((lb2.deliveries, lb2.retries), (1, 2));

    // Dead-letter: never delivered again.
    assert!(queue.dead_letter(&lb2, "poison").await.unwrap());
    assert_eq!(queue.lease(short).await.unwrap(), None);
    assert!(queue.depth().await.unwrap().dead >= 1);

    // A waiting lease wakes up for a push.
    let c = message(Environment::Production, "c");
    let (leased, ()) = tokio::join!(queue.lease(Duration::from_secs(5)), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        queue.push(&c).await.unwrap();
    });
    let lc = leased.unwrap().expect("a push wakes a waiting lease");
    assert!(queue.ack(&lc).await.unwrap());
    assert_eq!(queue.depth().await.unwrap().ready, 0);
}

/// Checks that an unsettled lease is delivered again after `visibility` (queues with a
/// visibility timeout; `queue` must be empty, unshared, and use that timeout).
pub async fn job_queue_lease_timeout(queue: &dyn JobQueue, visibility: Duration) {
    let m = message(Environment::Development, "lost-worker");
    queue.push(&m).await.unwrap();
    let first = queue
        .lease(Duration::from_millis(50))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queue.lease(Duration::from_millis(10)).await.unwrap(), None);
    let second = queue
        .lease(visibility * 4)
        .await
        .unwrap()
        .expect("an expired lease is delivered again");
    assert_eq!(second.payload, first.payload);
    assert_eq!((second.deliveries, second.retries), (2, 0));
    assert!(
        !queue.ack(&first).await.unwrap(),
        "the expired lease cannot ack"
    );
    assert!(queue.ack(&second).await.unwrap());
}

/// Runs every [`BlobStore`] check on `blobs`.
pub async fn blob_store(blobs: &dyn BlobStore) {
    blobs.ping().await.expect("ping");
    let job = JobId::new();
    let key = BlobKey::original(job);
    assert_eq!(blobs.get(&key).await.unwrap(), None);
    assert!(
        !blobs.delete(&key).await.unwrap(),
        "deleting a missing blob is not an error"
    );
    blobs.put(&key, Bytes::from_static(b"first")).await.unwrap();
    assert_eq!(
        blobs.get(&key).await.unwrap().as_deref(),
        Some(&b"first"[..])
    );
    blobs
        .put(&key, Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(
        blobs.get(&key).await.unwrap().as_deref(),
        Some(&b"second"[..])
    );

    // Nested keys and a larger body.
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    let nested = BlobKey::thumbnail(&format!("{:064x}", 42), job);
    blobs.put(&nested, Bytes::from(big.clone())).await.unwrap();
    assert_eq!(blobs.get(&nested).await.unwrap().as_deref(), Some(&big[..]));

    // Concurrent writers of one key: a reader sees one whole value.
    let writes = (0..8u8).map(|i| blobs.put(&key, Bytes::from(vec![i; 100_000])));
    for r in futures_util::future::join_all(writes).await {
        r.unwrap();
    }
    let got = blobs.get(&key).await.unwrap().unwrap();
    assert_eq!(got.len(), 100_000);
    assert!(
        got.iter().all(|&b| b == got[0]),
        "a blob is never a mix of two writes"
    );

    assert!(blobs.delete(&key).await.unwrap());
    assert!(blobs.delete(&nested).await.unwrap());
    assert_eq!(blobs.get(&key).await.unwrap(), None);

    // Stored without syncing: read like any other, replaced, synced, deleted; syncing a
    // blob that is gone is no error.
    let unsynced = BlobKey::original(JobId::new());
    blobs
        .put_unsynced(&unsynced, Bytes::from(big.clone()))
        .await
        .unwrap();
    assert_eq!(
        blobs.get(&unsynced).await.unwrap().as_deref(),
        Some(&big[..])
    );
    blobs
        .put_unsynced(&unsynced, Bytes::from_static(b"replaced"))
        .await
        .unwrap();
    blobs.sync(&unsynced).await.unwrap();
    assert_eq!(
        blobs.get(&unsynced).await.unwrap().as_deref(),
        Some(&b"replaced"[..])
    );
    assert!(blobs.delete(&unsynced).await.unwrap());
    blobs.sync(&unsynced).await.unwrap();
    assert_eq!(blobs.get(&unsynced).await.unwrap(), None);
}

fn queued(m: JobMessage, now: Timestamp) -> JobRecord {
    JobRecord::queued(m.job_id.unwrap(), &m, now)
}
