//! Listings: thumbnails by id with a prefix, jobs newest first with filters, in pages that
//! cover every item exactly once while items are added, and never another namespace's.

use crate::ids::{Environment, JobId, Namespace, Tenant, ThumbnailId};
use crate::job::{JobFailure, JobRecord, JobStatus};
use crate::listing::{JobKey, JobQuery, ThumbnailQuery};
use crate::store::MetaStore;
use crate::timestamp::Timestamp;
use thumbd_codes::Code;

fn namespace(tenant: &str) -> Namespace {
    Namespace::new(Tenant::parse(tenant).unwrap(), Environment::Production)
}

fn job(namespace: &Namespace, id: &str, created_at: Timestamp) -> JobRecord {
    let mut message = super::message(namespace.environment, id);
    message.tenant = namespace.tenant.clone();
    JobRecord::queued(message.job_id.unwrap(), &message, created_at)
}

/// A current thumbnail `id` in `namespace`, made by a job created at `at`.
async fn thumbnail(store: &dyn MetaStore, namespace: &Namespace, id: &str, at: Timestamp) {
    let job = job(namespace, id, at);
    assert!(store.create_job(&job).await.unwrap());
    store.start_job(job.id, at).await.unwrap();
    let finished = store
        .finish_succeeded(job.id, &super::result_for(job.id, 120), at)
        .await
        .unwrap();
    assert!(finished.current, "{id}");
}

/// Pages of `limit` thumbnails with `prefix`, following each page's last id; `between` runs
/// after each page.
async fn thumbnail_pages(
    store: &dyn MetaStore,
    namespace: &Namespace,
    prefix: &str,
    limit: u32,
    mut between: impl AsyncFnMut(usize),
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<ThumbnailId> = None;
    for page in 0.. {
        let query = ThumbnailQuery {
            prefix: prefix.into(),
            after: after.clone(),
            limit,
        };
        let items = store.list_thumbnails(namespace, &query).await.unwrap();
        assert!(
            items.len() <= limit as usize,
            "a page holds at most `limit`"
        );
        seen.extend(items.iter().map(|t| t.thumbnail_id.to_string()));
        let Some(last) = items.last() else { break };
        assert!(items.iter().all(|t| t.tenant == namespace.tenant));
        after = Some(last.thumbnail_id.clone());
        between(page).await;
    }
    seen
}

pub(super) async fn listing(store: &dyn MetaStore, now: Timestamp) {
    let ns = namespace("lister");
    let other = namespace("lister-other");
    for id in [
        "a",
        "cover",
        "cover/1",
        "cover/2",
        "cover/\u{e9}t\u{e9}",
        "cover/\u{10FFFF}",
        "cover0",
        "coves",
    ] {
        thumbnail(store, &ns, id, now).await;
    }
    thumbnail(store, &other, "cover/other", now).await;

    // The whole namespace, in byte order, one page.
    let all = thumbnail_pages(store, &ns, "", 100, async |_| {}).await;
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "ids in byte order");
    assert_eq!(all.len(), 8, "{all:?}: another tenant's thumbnail listed");

    // A prefix, two at a time, while thumbnails are added before and after the cursor: the
    // ones there from the start are each listed once; a new one is listed at most once.
    let mut added = 0;
    let pages = thumbnail_pages(store, &ns, "cover/", 2, async |page| {
        if page == 0 {
            for id in ["cover/0", "cover/3"] {
                thumbnail(store, &ns, id, now).await;
                added += 1;
            }
        }
    })
    .await;
    assert_eq!(added, 2);
    assert_eq!(
        pages,
        [
            "cover/1",
            "cover/2",
            "cover/3",
            "cover/\u{e9}t\u{e9}",
            "cover/\u{10FFFF}"
        ],
        "cover/0 sorts before the cursor, cover/3 after it"
    );
    let none = thumbnail_pages(store, &ns, "nothing/", 10, async |_| {}).await;
    assert!(none.is_empty());

    // Jobs, newest first, with status and code filters.
    let jobs_ns = namespace("job-lister");
    let mut made = Vec::new();
    for i in 0..7u64 {
        let at = Timestamp(now.0 + i64::try_from(i).unwrap());
        let job = job(&jobs_ns, &format!("j{i}"), at);
        assert!(store.create_job(&job).await.unwrap());
        made.push(job);
    }
    // Two jobs in the same millisecond: ordered by id, newest id first.
    let twin = job(&jobs_ns, "twin", made[6].created_at);
    assert!(store.create_job(&twin).await.unwrap());
    made.push(twin);
    let failure = JobFailure {
        code: Code::ImageDimensionsTooLarge,
        message: "too large".into(),
    };
    for job in [&made[1], &made[4]] {
        assert!(store.finish_failed(job.id, &failure, now).await.unwrap());
    }
    let other_code = JobFailure {
        code: Code::CorruptImage,
        message: "no".into(),
    };
    assert!(
        store
            .finish_failed(made[2].id, &other_code, now)
            .await
            .unwrap()
    );

    let mut expected: Vec<(Timestamp, String)> = made
        .iter()
        .map(|j| (j.created_at, j.id.to_string()))
        .collect();
    expected.sort();
    expected.reverse();
    let expected: Vec<JobId> = expected
        .iter()
        .map(|(_, id)| JobId::parse(id).unwrap())
        .collect();

    let mut listed = Vec::new();
    let mut before = None;
    loop {
        let query = JobQuery {
            before,
            limit: 3,
            ..JobQuery::default()
        };
        let page = store.list_jobs(&jobs_ns, &query).await.unwrap();
        listed.extend(page.iter().map(|j| j.id));
        let Some(last) = page.last() else { break };
        before = Some(JobKey {
            created_at: last.created_at,
            id: last.id,
        });
        // A job accepted meanwhile is newer than every cursor: never on a later page.
        let late = job(&jobs_ns, "late", Timestamp(now.0 + 100));
        assert!(store.create_job(&late).await.unwrap());
    }
    assert_eq!(listed, expected, "newest first, each once");

    let failed = JobQuery {
        status: Some(JobStatus::Failed),
        limit: 10,
        ..JobQuery::default()
    };
    let failed = store.list_jobs(&jobs_ns, &failed).await.unwrap();
    assert_eq!(
        failed.iter().map(|j| j.id).collect::<Vec<_>>(),
        [made[4].id, made[2].id, made[1].id]
    );
    let by_code = JobQuery {
        code: Some(Code::ImageDimensionsTooLarge),
        limit: 10,
        ..JobQuery::default()
    };
    let by_code = store.list_jobs(&jobs_ns, &by_code).await.unwrap();
    assert_eq!(
        by_code.iter().map(|j| j.id).collect::<Vec<_>>(),
        [made[4].id, made[1].id]
    );
    let elsewhere = JobQuery {
        limit: 10,
        ..JobQuery::default()
    };
    assert!(
        store
            .list_jobs(&namespace("nobody"), &elsewhere)
            .await
            .unwrap()
            .is_empty()
    );
}
