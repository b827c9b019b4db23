//! `thumbd serve`'s local runs: a create that waits runs at once on the worker of the same
//! process, its original in memory, and is queued (original stored, message pushed) only
//! when it does not finish within the wait. Real SQLite, files and worker; the stand-in
//! local workers below only decide *when* a run ends, to reach the API's fallbacks.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use bytes::Bytes;
use common::*;
use thumbd_jobs::{BlobKey, JobId, JobRecord, LocalRun, LocalWorker, QueueDepth};
use tokio::task::JoinHandle;

const POST: &str = "/v1/thumbnails?thumbnailId=cover&environment=development";

fn waiting(prefer: &str) -> axum::http::Request<axum::body::Body> {
    let mut req = create(POST, Some(&rw()), Some("image/png"), png(640, 480));
    req.headers_mut().insert("prefer", prefer.parse().unwrap());
    req
}

fn job_id(a: &Answer) -> JobId {
    JobId::parse(a.json()["id"].as_str().unwrap()).unwrap()
}

async fn original_stored(rig: &Rig, job: JobId) -> bool {
    rig.state
        .blobs
        .get(&BlobKey::original(job))
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn a_waiting_create_runs_locally_without_storing_or_queueing_its_original() {
    let mut rig = rig().await;
    let local = rig.worker.local();
    rig.set_local_worker(local);
    // No worker loop runs: only the local run can finish this job.
    let a = rig.call(waiting("wait=10")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let j = a.json();
    assert_eq!(j["status"], "succeeded");
    assert_eq!(j["attempts"], 1, "{j}");
    assert!(
        j["startedAt"].is_string() && j["finishedAt"].is_string(),
        "{j}"
    );
    let job = job_id(&a);
    assert!(!original_stored(&rig, job).await, "no claim check");
    assert_eq!(
        rig.state.queue.depth().await.unwrap(),
        QueueDepth::default()
    );
    // Finished, so the sweeper has nothing to publish.
    let later = thumbd_jobs::Timestamp::now().plus(std::time::Duration::from_secs(1));
    assert!(
        rig.state
            .store
            .unpublished_jobs(later, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let g = rig
        .call(get(
            "/v1/thumbnails/cover?environment=development",
            Some(&rw()),
        ))
        .await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.body.len() as u64, j["result"]["bytes"].as_u64().unwrap());
}

#[tokio::test]
async fn a_bad_image_found_by_a_local_run_answers_its_error() {
    let mut rig = rig().await;
    let local = rig.worker.local();
    rig.set_local_worker(local);
    // The header is fine, the pixels are not: only decoding finds it, and with no worker
    // loop running only a local run decodes (else: 202 after the 2 s wait).
    let mut bytes = png(300, 200);
    bytes.truncate(bytes.len() - 200);
    let a = rig
        .call(create(POST, Some(&rw()), Some("image/png"), bytes))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", a.body);
    assert_eq!(a.detail_code(), "CorruptImage");
    assert_eq!(
        rig.state.queue.depth().await.unwrap(),
        QueueDepth::default()
    );
}

#[tokio::test]
async fn respond_async_is_queued_even_with_a_local_worker() {
    let mut rig = rig().await;
    let local = rig.worker.local();
    rig.set_local_worker(local);
    let a = rig.call(waiting("respond-async")).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert!(original_stored(&rig, job_id(&a)).await);
    assert_eq!(rig.state.queue.depth().await.unwrap().ready, 1);
}

/// A local worker that only decides how a run ends.
enum StandIn {
    /// No room: `try_run` declines.
    Busy,
    /// The run never ends (it overruns any wait).
    Hangs,
    /// The run ends unfinished (a transient failure).
    HandsBack,
}

impl LocalWorker for StandIn {
    fn try_run(&self, _: &JobRecord, _: Bytes) -> Option<JoinHandle<LocalRun>> {
        match self {
            StandIn::Busy => None,
            StandIn::Hangs => Some(tokio::spawn(std::future::pending())),
            StandIn::HandsBack => Some(tokio::spawn(async { LocalRun::Unfinished })),
        }
    }
}

/// With `stand_in` as the local worker, a create waiting one second is queued properly
/// before its 202, and the real worker then finishes it from the queue.
async fn queued_when(stand_in: StandIn) {
    let mut rig = rig().await;
    rig.set_local_worker(Arc::new(stand_in));
    let a = rig.call(waiting("wait=1")).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
    assert_eq!(a.json()["status"], "queued");
    let job = job_id(&a);
    assert!(
        original_stored(&rig, job).await,
        "the claim check is stored"
    );
    assert_eq!(rig.state.queue.depth().await.unwrap().ready, 1);

    let outcomes = rig.worker.drain().await;
    assert_eq!(
        outcomes,
        [thumbd_worker::Outcome::Succeeded { job, current: true }]
    );
    let s = rig
        .call(get(a.header("location").unwrap(), Some(&rw())))
        .await;
    assert_eq!(s.json()["status"], "succeeded");
    assert!(!original_stored(&rig, job).await, "the original is dropped");
}

#[tokio::test]
async fn a_local_run_overrunning_its_wait_is_queued_before_the_202() {
    queued_when(StandIn::Hangs).await;
}

#[tokio::test]
async fn a_local_run_handed_back_is_queued() {
    queued_when(StandIn::HandsBack).await;
}

#[tokio::test]
async fn a_busy_local_worker_leaves_the_job_to_the_queue() {
    queued_when(StandIn::Busy).await;
}
