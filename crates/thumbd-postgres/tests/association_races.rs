//! Contexts and idempotency keys under concurrency: two stores (pools, as two processes
//! would have) racing on one schema. Each test has a schema of its own.
//!
//! PostgreSQL comes from `THUMBD_TEST_DATABASE_URL` (default: the local `test` database);
//! without one the tests print SKIP, or fail with `THUMBD_REQUIRE_SERVICES=1`.

mod support;

use std::time::Duration;

use support::{queued, result_for, schema, started};
use thumbd_jobs::{
    AssociationStore, Claim, ContextId, ContextRecord, Environment, IdempotencyKey, JobStore,
    ThumbnailId, ThumbnailRecord, ThumbnailStore, Timestamp,
};
use thumbd_postgres::PgMetaStore;

const ROUNDS: usize = 30;
const ENV: Environment = Environment::Development;

/// A current thumbnail `id`, made the way the worker makes one.
async fn thumbnail(store: &PgMetaStore, id: &str) -> ThumbnailRecord {
    let job = queued(id, Timestamp::now());
    started(store, &job).await;
    store
        .finish_succeeded(job.id, &result_for(job.id), Timestamp::now())
        .await
        .unwrap();
    store
        .thumbnail(&NS, &job.thumbnail_id)
        .await
        .unwrap()
        .unwrap()
}

fn context(id: &str, thumbnail: &str) -> ContextRecord {
    ContextRecord {
        tenant: thumbd_jobs::Tenant::default(),
        environment: ENV,
        context_id: ContextId::parse(id).unwrap(),
        thumbnail_id: ThumbnailId::parse(thumbnail).unwrap(),
        body: "{}".into(),
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    }
}

/// Alternates which store runs which side, so either may commit first.
fn pair<'a>(
    a: &'a PgMetaStore,
    b: &'a PgMetaStore,
    round: usize,
) -> (&'a PgMetaStore, &'a PgMetaStore) {
    if round.is_multiple_of(2) {
        (a, b)
    } else {
        (b, a)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_deletes_of_the_last_two_contexts_delete_the_thumbnail_once() {
    let Some(schema) =
        schema("racing_deletes_of_the_last_two_contexts_delete_the_thumbnail_once").await
    else {
        return;
    };
    let (a, b) = (schema.store().await.unwrap(), schema.store().await.unwrap());
    for round in 0..ROUNDS {
        let thumb = thumbnail(&a, &format!("shared-{round}")).await;
        let (one, two) = (format!("one-{round}"), format!("two-{round}"));
        let name = thumb.thumbnail_id.as_str();
        a.put_context(&context(&one, name)).await.unwrap();
        b.put_context(&context(&two, name)).await.unwrap();
        let (x, y) = pair(&a, &b, round);
        let (one, two) = (
            ContextId::parse(&one).unwrap(),
            ContextId::parse(&two).unwrap(),
        );
        let (first, second) =
            tokio::join!(x.delete_context(&NS, &one), y.delete_context(&NS, &two));
        let deleted: Vec<ThumbnailRecord> = [first, second]
            .into_iter()
            .filter_map(|change| change.unwrap().expect("both existed").deleted_thumbnail)
            .collect();
        assert_eq!(
            deleted,
            std::slice::from_ref(&thumb),
            "round {round}: deleted exactly once"
        );
        assert_eq!(
            a.thumbnail(&NS, &thumb.thumbnail_id).await.unwrap(),
            None,
            "round {round}: never left behind"
        );
    }
    a.close().await;
    b.close().await;
    schema.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_repoint_and_delete_delete_the_thumbnail_once() {
    let Some(schema) = schema("racing_repoint_and_delete_delete_the_thumbnail_once").await else {
        return;
    };
    let (a, b) = (schema.store().await.unwrap(), schema.store().await.unwrap());
    let target = thumbnail(&a, "target").await;
    for round in 0..ROUNDS {
        // One context moves away from the shared thumbnail while the other is deleted.
        let thumb = thumbnail(&a, &format!("left-{round}")).await;
        let name = thumb.thumbnail_id.as_str();
        let (moving, leaving) = (format!("moving-{round}"), format!("leaving-{round}"));
        a.put_context(&context(&moving, name)).await.unwrap();
        a.put_context(&context(&leaving, name)).await.unwrap();
        let (x, y) = pair(&a, &b, round);
        let leaving = ContextId::parse(&leaving).unwrap();
        let moved = context(&moving, "target");
        let (put, deleted) = tokio::join!(x.put_context(&moved), y.delete_context(&NS, &leaving));
        let deleted = [
            put.unwrap().deleted_thumbnail,
            deleted.unwrap().unwrap().deleted_thumbnail,
        ];
        let deleted: Vec<_> = deleted.into_iter().flatten().collect();
        assert_eq!(deleted, std::slice::from_ref(&thumb), "round {round}");
        assert_eq!(a.thumbnail(&NS, &thumb.thumbnail_id).await.unwrap(), None);
    }
    assert!(
        a.thumbnail(&NS, &target.thumbnail_id)
            .await
            .unwrap()
            .is_some(),
        "the thumbnail the contexts moved to stays"
    );
    a.close().await;
    b.close().await;
    schema.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_repoints_take_locks_in_order() {
    let Some(schema) = schema("crossing_repoints_take_locks_in_order").await else {
        return;
    };
    let (a, b) = (schema.store().await.unwrap(), schema.store().await.unwrap());
    for round in 0..ROUNDS {
        // c1 → t1 and c2 → t2 swap thumbnails at once: each transaction needs both locks.
        // Whichever commits first leaves its old thumbnail unreferenced for a moment, so
        // exactly one thumbnail goes; neither waits for the other forever.
        let (n1, n2) = (format!("t1-{round}"), format!("t2-{round}"));
        let (t1, t2) = (thumbnail(&a, &n1).await, thumbnail(&a, &n2).await);
        let (c1, c2) = (format!("c1-{round}"), format!("c2-{round}"));
        a.put_context(&context(&c1, &n1)).await.unwrap();
        a.put_context(&context(&c2, &n2)).await.unwrap();
        let (x, y) = pair(&a, &b, round);
        let (s1, s2) = (context(&c1, &n2), context(&c2, &n1));
        let swap = tokio::time::timeout(Duration::from_secs(10), async {
            tokio::join!(x.put_context(&s1), y.put_context(&s2))
        });
        let (first, second) = swap.await.expect("no deadlock");
        let deleted: Vec<_> = [first.unwrap(), second.unwrap()]
            .into_iter()
            .filter_map(|change| change.deleted_thumbnail)
            .collect();
        assert_eq!(deleted.len(), 1, "round {round}: {deleted:?}");
        assert!(deleted[0] == t1 || deleted[0] == t2, "round {round}");
        let survivor = if deleted[0] == t1 { &t2 } else { &t1 };
        assert!(
            a.thumbnail(&NS, &survivor.thumbnail_id)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            a.thumbnail(&NS, &deleted[0].thumbnail_id).await.unwrap(),
            None
        );
    }
    a.close().await;
    b.close().await;
    schema.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_idempotent_creates_create_once() {
    let Some(schema) = schema("racing_idempotent_creates_create_once").await else {
        return;
    };
    let (a, b) = (schema.store().await.unwrap(), schema.store().await.unwrap());
    let now = Timestamp::now();
    let fresh = now.minus(Duration::from_secs(24 * 3600));
    for round in 0..ROUNDS {
        let key = IdempotencyKey {
            tenant: thumbd_jobs::Tenant::default(),
            client: "client\0ü".into(),
            environment: ENV,
            key: format!("key-{round}"),
        };
        // Odd rounds: a stale entry (an old job) that both want to replace.
        if round % 2 == 1 {
            let old = queued("idem", fresh.minus(Duration::from_secs(1)));
            let claim = a.create_job_idempotent(&old, &key, fresh.minus(Duration::from_secs(2)));
            assert_eq!(claim.await.unwrap(), Claim::Created);
        }
        let (j1, j2) = (queued("idem", now), queued("idem", now));
        let (x, y) = pair(&a, &b, round);
        let (c1, c2) = tokio::join!(
            x.create_job_idempotent(&j1, &key, fresh),
            y.create_job_idempotent(&j2, &key, fresh),
        );
        let (winner, loser, claim) = match (c1.unwrap(), c2.unwrap()) {
            (Claim::Created, other) => (&j1, &j2, other),
            (other, Claim::Created) => (&j2, &j1, other),
            both => panic!("round {round}: no single creator: {both:?}"),
        };
        assert_eq!(claim, Claim::Existing(winner.id), "round {round}");
        assert!(a.job(winner.id).await.unwrap().is_some());
        assert_eq!(a.job(loser.id).await.unwrap(), None, "round {round}");
        assert_eq!(
            b.idempotent_job(&key, fresh).await.unwrap(),
            Some(winner.id)
        );
    }
    a.close().await;
    b.close().await;
    schema.remove().await.unwrap();
}

/// The namespace every race runs in.
static NS: std::sync::LazyLock<thumbd_jobs::Namespace> =
    std::sync::LazyLock::new(|| thumbd_jobs::Namespace::default_tenant(ENV));
