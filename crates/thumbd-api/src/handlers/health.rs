//! `/healthz` (the process answers) and `/readyz` (its backends answer too).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;

/// Liveness: 200 while the process serves requests.
pub async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Readiness: 200 when the store, the queue and the blob store all answer; else 503
/// `ServiceUnavailable` naming what failed.
pub async fn readyz(State(state): State<AppState>) -> Response {
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
    if down.is_empty() {
        let depth = queue.unwrap_or_default();
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "queue": {"ready": depth.ready, "leased": depth.leased, "delayed": depth.delayed, "dead": depth.dead}})),
        )
            .into_response()
    } else {
        ApiError::unavailable(format!("not ready: {} unavailable", down.join(", "))).into_response()
    }
}
