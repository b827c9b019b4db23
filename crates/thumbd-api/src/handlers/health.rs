//! `/healthz` (the process answers) and `/readyz` (its backends answer too).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use thumbd_jobs::QueueDepth;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};

/// The liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The readiness answer: every backend answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessView {
    /// Always `ready` (otherwise the answer is 503 `ServiceUnavailable`).
    #[schema(example = "ready")]
    pub status: &'static str,
    /// The job queue's messages by state.
    pub queue: QueueView,
}

/// Messages in the job queue by state.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// Waiting for a worker.
    pub ready: u64,
    /// Held by a worker.
    pub leased: u64,
    /// Waiting out a retry delay.
    pub delayed: u64,
    /// Given up on (dead-lettered).
    pub dead: u64,
}

/// Liveness.
///
/// 200 while the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = HealthView))
)]
pub async fn healthz() -> Response {
    Json(HealthView { status: "ok" }).into_response()
}

/// Readiness.
///
/// 200 when the store, the queue and the blob store all answer; else 503
/// `ServiceUnavailable` naming what failed. Checked at most once per second per process
/// (`ApiOptions::readiness_ttl`); calls in between get the last answer.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Every backend answers", body = ReadinessView),
        (status = 503, description = "`ServiceUnavailable`: the message names the backends that do not answer",
            body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let checked = state
        .readiness
        .checked(state.options.readiness_ttl, || check(&state))
        .await;
    if checked.down.is_empty() {
        let depth = checked.depth;
        let view = ReadinessView {
            status: "ready",
            queue: QueueView {
                ready: depth.ready,
                leased: depth.leased,
                delayed: depth.delayed,
                dead: depth.dead,
            },
        };
        (StatusCode::OK, Json(view)).into_response()
    } else {
        ApiError::unavailable(format!(
            "not ready: {} unavailable",
            checked.down.join(", ")
        ))
        .into_response()
    }
}

/// Asks every backend.
async fn check(state: &AppState) -> Checked {
    let (store, queue, blobs) =
        tokio::join!(state.store.ping(), state.queue.depth(), state.blobs.ping());
    let mut down = Vec::new();
    for (name, error) in [
        ("store", store.as_ref().err()),
        ("queue", queue.as_ref().err()),
        ("blobs", blobs.as_ref().err()),
    ] {
        if let Some(e) = error {
            tracing::warn!(backend = name, error = %e, "not ready");
            down.push(name);
        }
    }
    Checked {
        down,
        depth: queue.unwrap_or_default(),
    }
}

/// What one readiness check found.
#[derive(Debug, Clone)]
struct Checked {
    down: Vec<&'static str>,
    depth: QueueDepth,
}

/// The last readiness check of this process, answered again while it is fresh: `/readyz`
/// needs no token, so without this any caller could turn requests into database pings,
/// queue scans, broker channels and object-store listings. Concurrent callers wait for
/// the one check in progress instead of starting their own.
#[derive(Debug, Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(tokio::time::Instant, Checked)>>,
}

impl Readiness {
    async fn checked<F: Future<Output = Checked>>(
        &self,
        ttl: std::time::Duration,
        check: impl FnOnce() -> F,
    ) -> Checked {
        let mut last = self.last.lock().await;
        if let Some((at, checked)) = &*last
            && at.elapsed() < ttl
        {
            return checked.clone();
        }
        let checked = check().await;
        *last = Some((tokio::time::Instant::now(), checked.clone()));
        checked
    }
}
