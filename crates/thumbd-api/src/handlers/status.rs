//! `GET /v1/status/{jobId}`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use thumbd_codes::Code;
use thumbd_jobs::JobId;

use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ErrorBody};
use crate::views::StatusView;

/// A job's status.
///
/// ClassKit's "Get Status": where the job behind a create is, and its result or error once
/// finished. Job records are kept at least 24 h after finishing.
#[utoipa::path(
    get,
    path = "/v1/status/{jobId}",
    operation_id = "getStatus",
    tag = "jobs",
    security(("bearer" = ["thumbnails:read"])),
    params(("jobId" = String, Path, description = "The job's id, from a create's body or `Location`")),
    responses(
        (status = 200, description = "The job's status", body = StatusView,
            headers(("Retry-After" = u32, description = "`1` while the job is not finished: poll again after it"))),
        (status = 404, description = "`JobNotFound`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // Authenticate before revealing whether the id exists.
    let caller = state.auth.authorize(&headers, Scope::Read, None)?;
    let not_found = || ApiError::not_found(Code::JobNotFound, format!("there is no job {id:?}"));
    let job_id = JobId::parse(&id).map_err(|_| not_found())?;
    // Another tenant's job is as unknown as one that never was (README "Tenants": never 403).
    let Some(job) = state
        .store
        .job(job_id)
        .await?
        .filter(|job| job.tenant == caller.tenant)
    else {
        return Err(not_found());
    };
    state
        .auth
        .authorize(&headers, Scope::Read, Some(job.environment))?;
    let mut response = (
        StatusCode::OK,
        axum::Json(StatusView::new(&job, state.options.url_signer.as_ref())),
    )
        .into_response();
    if !job.status.is_finished() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    Ok(response)
}
