//! Shared by the PostgreSQL store tests: a schema per test, and jobs made the way the API and
//! the worker make them.

#![allow(dead_code)]

use thumbd_jobs::{
    BlobKey, Environment, JobId, JobMessage, JobRecord, JobResult, JobSource, JobStore,
    ThumbnailId, Timestamp, services,
};
use thumbd_postgres::{PgMetaStore, TestSchema};

/// A schema of its own for `test`, or `None` (SKIP) without PostgreSQL.
pub async fn schema(test: &str) -> Option<TestSchema> {
    let url = services::service_url(
        "THUMBD_TEST_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/test",
        test,
    )?;
    Some(
        TestSchema::create(&url)
            .await
            .expect("create a test schema"),
    )
}

/// A queued job for `thumbnail_id` in `development`.
pub fn queued(thumbnail_id: &str, created_at: Timestamp) -> JobRecord {
    let message = JobMessage {
        tenant: thumbd_jobs::Tenant::default(),
        job_id: None,
        environment: Environment::Development,
        thumbnail_id: ThumbnailId::parse(thumbnail_id).unwrap(),
        source: JobSource::Url {
            url: "https://example.invalid/a.png".into(),
        },
        reply_to: None,
        profile: None,
    };
    JobRecord::queued(JobId::new(), &message, created_at)
}

/// A succeeded job's result.
pub fn result_for(job: JobId) -> JobResult {
    let sha = format!("{:064x}", 42);
    JobResult {
        width: 330,
        height: 200,
        bytes: 1234,
        content_type: "image/png".into(),
        etag: sha.clone(),
        blob_key: BlobKey::thumbnail(&sha, job),
        budget: "fits".into(),
        animated: false,
        placeholder: None,
        profile: None,
        source: None,
        renditions: Vec::new(),
    }
}

/// Creates and starts `job`.
pub async fn started(store: &PgMetaStore, job: &JobRecord) {
    assert!(store.create_job(job).await.unwrap());
    store.start_job(job.id, job.created_at).await.unwrap();
}
