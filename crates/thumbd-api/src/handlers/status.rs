//! `GET /v1/status/{jobId}`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use thumbd_jobs::JobId;

use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiError;
use thumbd_jobs::views::StatusView;

/// The job's status body; `Retry-After: 1` while it is not finished.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Authenticate before revealing whether the id exists.
    state.auth.authorize(&headers, Scope::Read, None)?;
    let not_found = || ApiError::not_found("JobNotFound", format!("there is no job {id:?}"));
    let job_id = JobId::parse(&id).map_err(|_| not_found())?;
    let Some(job) = state.store.job(job_id).await? else {
        return Err(not_found());
    };
    state
        .auth
        .authorize(&headers, Scope::Read, Some(job.environment))?;
    let mut response = (StatusCode::OK, axum::Json(StatusView::from(&job))).into_response();
    if !job.status.is_finished() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Ok(response)
}
