//! Listing pages at scale: 100 000 thumbnails and 100 000 jobs in one namespace of SQLite
//! and of PostgreSQL, then the first page and the last page of each listing, timed. A
//! keyset page reads its rows off an index from the cursor on, so the last page should cost
//! what the first does.
//!
//! ```sh
//! cargo bench --bench listing                       # SQLite; PostgreSQL too with:
//! THUMBD_TEST_DATABASE_URL=postgres://…/test cargo bench --bench listing
//! ```

use std::time::{Duration, Instant};

use sqlx::Connection as _;
use thumbd_jobs::{
    Environment, JobKey, JobQuery, MetaStore, Namespace, SqliteDb, SqliteMetaStore, ThumbnailId,
    ThumbnailQuery,
};

const ROWS: u32 = 100_000;
const PAGE: u32 = 100;

/// Rows of the namespace `production` of the tenant `default`: thumbnails `t/000000`…
/// and their finished jobs, one millisecond apart. `$1` is the number of rows.
const SQLITE_ROWS: &str = "
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
INSERT INTO jobs (id, environment, thumbnail_id, status, source, created_at, finished_at,
                  attempts, result, published)
SELECT printf('00000000-0000-7000-8000-%012d', i), 'production', printf('t/%06d', i),
       'succeeded', '{\"url\":\"https://example.invalid/\"}', 1700000000000 + i,
       1700000000000 + i, 1, ?2, 1
FROM n;
INSERT INTO thumbnails (environment, thumbnail_id, job_id, job_created_at, result, blob_key,
                        updated_at)
SELECT environment, thumbnail_id, id, created_at, result,
       'thumbnails/ab/' || substr(id, 25) , created_at FROM jobs;
";

const PG_ROWS: &str = "
INSERT INTO jobs (id, environment, thumbnail_id, status, source, created_at, finished_at,
                  attempts, result, published)
SELECT ('00000000-0000-7000-8000-' || lpad(i::text, 12, '0'))::uuid, 'production',
       convert_to('t/' || lpad(i::text, 6, '0'), 'UTF8'), 'succeeded',
       '{\"url\":\"https://example.invalid/\"}', 1700000000000 + i, 1700000000000 + i, 1,
       $2::json, true
FROM generate_series(0, $1 - 1) AS i;
INSERT INTO thumbnails (environment, thumbnail_id, job_id, job_created_at, result, blob_key,
                        updated_at)
SELECT environment, thumbnail_id, id, created_at, result,
       'thumbnails/ab/' || right(id::text, 12), created_at FROM jobs;
";

fn result_json() -> String {
    let sha = "ab".repeat(32);
    format!(
        r#"{{"width":330,"height":220,"bytes":12345,"contentType":"image/png","etag":"{sha}","blobKey":"thumbnails/ab/{sha}-00000000-0000-7000-8000-000000000000","budget":"fits"}}"#
    )
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        println!("| store | listing | first page | last page |");
        println!("|---|---|---:|---:|");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("thumbd.db");
        SqliteDb::open(&path).await.unwrap().close().await;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        for statement in SQLITE_ROWS
            .split_inclusive(';')
            .filter(|s| !s.trim().is_empty())
        {
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .bind(i64::from(ROWS))
                .bind(result_json())
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
        let store = SqliteMetaStore::new(SqliteDb::open(&path).await.unwrap());
        report("SQLite", &store).await;

        match std::env::var("THUMBD_TEST_DATABASE_URL") {
            Err(_) => println!("(PostgreSQL skipped: THUMBD_TEST_DATABASE_URL is not set)"),
            Ok(url) => {
                let schema = thumbd_postgres::TestSchema::create(&url).await.unwrap();
                let store = schema.store().await.unwrap();
                for statement in PG_ROWS
                    .split_inclusive(';')
                    .filter(|s| !s.trim().is_empty())
                {
                    sqlx::query(sqlx::AssertSqlSafe(statement))
                        .bind(i64::from(ROWS))
                        .bind(result_json())
                        .execute(store.pool())
                        .await
                        .unwrap();
                }
                sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
                report("PostgreSQL", &store).await;
                store.close().await;
                schema.remove().await.unwrap();
            }
        }
    });
}

/// The median of 21 calls of `f`.
async fn median<F: AsyncFnMut()>(mut f: F) -> Duration {
    let mut times = Vec::new();
    for _ in 0..21 {
        let start = Instant::now();
        f().await;
        times.push(start.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

async fn report(name: &str, store: &dyn MetaStore) {
    let ns = Namespace::default_tenant(Environment::Production);
    let thumbnails = async |after: Option<ThumbnailId>| {
        let query = ThumbnailQuery {
            prefix: "t/".into(),
            after,
            limit: PAGE,
        };
        let page = store.list_thumbnails(&ns, &query).await.unwrap();
        assert!(!page.is_empty());
    };
    let last_id = ThumbnailId::parse(&format!("t/{:06}", ROWS - PAGE - 1)).unwrap();
    let first = median(async || thumbnails(None).await).await;
    let last = median(async || thumbnails(Some(last_id.clone())).await).await;
    println!("| {name} | {ROWS} thumbnails by id | {first:.2?} | {last:.2?} |");

    let jobs = async |before: Option<JobKey>| {
        let query = JobQuery {
            before,
            limit: PAGE,
            ..JobQuery::default()
        };
        let page = store.list_jobs(&ns, &query).await.unwrap();
        assert_eq!(page.len(), PAGE as usize);
    };
    let oldest = JobKey {
        created_at: thumbd_jobs::Timestamp(1_700_000_000_000 + i64::from(PAGE) + 1),
        id: thumbd_jobs::JobId::parse(&format!("00000000-0000-7000-8000-{:012}", PAGE + 1))
            .unwrap(),
    };
    let first = median(async || jobs(None).await).await;
    let last = median(async || jobs(Some(oldest)).await).await;
    println!("| {name} | {ROWS} jobs, newest first | {first:.2?} | {last:.2?} |");
}
