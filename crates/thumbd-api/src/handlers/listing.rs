//! `GET /v1/thumbnails` and `GET /v1/jobs`: what a namespace holds, a page at a time.
//!
//! Pages are keyset-paged by the stores ([`ThumbnailQuery`], [`JobQuery`]): the opaque
//! `cursor` is the last item's key, so items added or removed between pages never make
//! another item appear twice or not at all. Listing needs a token even with `public_reads`:
//! ids are the caller's business.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use thumbd_codes::Code;
use thumbd_jobs::{
    Environment, JobId, JobKey, JobQuery, JobStatus, Namespace, ThumbnailId, ThumbnailQuery,
    ThumbnailRecord, Timestamp,
};

use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ErrorBody};
use crate::request::QueryParams;
use crate::signing::UrlSigner;
use crate::views::{ResultView, StatusView};

/// Items per page unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 100;
/// The largest `limit`.
const MAX_LIMIT: u32 = 1000;

/// One page of thumbnails.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThumbnailPage {
    /// In byte order of their ids.
    pub items: Vec<ThumbnailItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A stored thumbnail, as listed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThumbnailItem {
    /// The client's id.
    pub thumbnail_id: String,
    /// When these bytes became current (RFC 3339).
    pub updated_at: Timestamp,
    /// The thumbnail, as a job's result shows it.
    #[serde(flatten)]
    pub result: ResultView,
}

/// One page of jobs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobPage {
    /// Newest first: status bodies, as `GET /v1/status/{jobId}` answers them.
    pub items: Vec<StatusView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// List thumbnails.
///
/// The namespace's current thumbnails in byte order of their ids, optionally those whose id
/// starts with `prefix`, a page at a time. A thumbnail added while paging is listed at most
/// once (on a later page if its id sorts after the cursor); every other one exactly once.
#[utoipa::path(
    get,
    path = "/v1/thumbnails",
    operation_id = "listThumbnails",
    tag = "thumbnails",
    security(("bearer" = ["thumbnails:read"])),
    params(
        ("environment" = Environment, Query, description = "The namespace"),
        ("prefix" = Option<String>, Query, description = "Only ids starting with this"),
        ("limit" = Option<u32>, Query, description = "Items per page, 1–1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`"),
    ),
    responses(
        (status = 200, description = "A page", body = ThumbnailPage),
        (status = 400, description = "`InvalidQueryParameter` (target: the parameter)", body = ErrorBody),
        (status = 401, description = "`HeaderNotFound` or `InvalidToken`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn thumbnails(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<axum::Json<ThumbnailPage>, ApiError> {
    let params = QueryParams::parse(query.as_deref())?;
    let namespace = authorized(&state, &params, &headers)?;
    let limit = limit(&params)?;
    let after = params
        .one("cursor")?
        .map(|c| {
            decode_cursor(c)
                .and_then(|text| ThumbnailId::parse(&text).ok())
                .ok_or_else(bad_cursor)
        })
        .transpose()?;
    let query = ThumbnailQuery {
        prefix: params.one("prefix")?.unwrap_or_default().to_owned(),
        after,
        // One more than asked: whether there is a next page.
        limit: limit + 1,
    };
    let mut records = state.store.list_thumbnails(&namespace, &query).await?;
    let next_cursor =
        more(&mut records, limit).map(|last| encode_cursor(last.thumbnail_id.as_str()));
    Ok(axum::Json(ThumbnailPage {
        items: records
            .iter()
            .map(|r| item(r, state.options.url_signer.as_ref()))
            .collect(),
        next_cursor,
    }))
}

/// List jobs.
///
/// The namespace's jobs, newest first, optionally only those in one `status` or failed with
/// one `code`, a page at a time. Jobs accepted while paging are newer than the cursor and
/// appear on a new listing, not on a later page. Job records are kept at least 24 h after
/// they finish.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    operation_id = "listJobs",
    tag = "jobs",
    security(("bearer" = ["thumbnails:read"])),
    params(
        ("environment" = Environment, Query, description = "The namespace"),
        ("status" = Option<JobStatus>, Query, description = "Only jobs in this status"),
        ("code" = Option<String>, Query, description = "Only failed jobs with this error code"),
        ("limit" = Option<u32>, Query, description = "Items per page, 1–1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "The previous page's `nextCursor`"),
    ),
    responses(
        (status = 200, description = "A page", body = JobPage),
        (status = 400, description = "`InvalidQueryParameter` (target: the parameter)", body = ErrorBody),
        (status = 401, description = "`HeaderNotFound` or `InvalidToken`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn jobs(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<axum::Json<JobPage>, ApiError> {
    let params = QueryParams::parse(query.as_deref())?;
    let namespace = authorized(&state, &params, &headers)?;
    let limit = limit(&params)?;
    let status = params
        .one("status")?
        .map(|s| {
            JobStatus::parse(s).map_err(|_| {
                ApiError::invalid_query(
                    "status",
                    "`status` is queued, processing, succeeded or failed",
                )
            })
        })
        .transpose()?;
    let code = params
        .one("code")?
        .map(|c| {
            c.parse::<Code>()
                .map_err(|_| ApiError::invalid_query("code", format!("{c:?} is no error code")))
        })
        .transpose()?;
    let before = params
        .one("cursor")?
        .map(|c| {
            decode_cursor(c)
                .and_then(|t| job_key(&t))
                .ok_or_else(bad_cursor)
        })
        .transpose()?;
    let query = JobQuery {
        status,
        code,
        before,
        limit: limit + 1,
    };
    let mut records = state.store.list_jobs(&namespace, &query).await?;
    let next_cursor = more(&mut records, limit)
        .map(|last| encode_cursor(&format!("{}.{}", last.created_at.0, last.id)));
    Ok(axum::Json(JobPage {
        items: records
            .iter()
            .map(|r| StatusView::new(r, state.options.url_signer.as_ref()))
            .collect(),
        next_cursor,
    }))
}

/// The caller's namespace, once its token (always required here) allows reading it.
fn authorized(
    state: &AppState,
    params: &QueryParams,
    headers: &HeaderMap,
) -> Result<Namespace, ApiError> {
    let environment = params.environment()?;
    let caller = state
        .auth
        .authorize_token(headers, Scope::Read, Some(environment))?;
    Ok(Namespace::new(caller.tenant, environment))
}

fn limit(params: &QueryParams) -> Result<u32, ApiError> {
    match params.one("limit")? {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_query("limit", format!("`limit` is 1 to {MAX_LIMIT}"))
            }),
    }
}

/// Keeps the first `limit` of `records` (fetched `limit + 1`); the last one kept if there
/// were more.
fn more<T>(records: &mut Vec<T>, limit: u32) -> Option<&T> {
    if records.len() > limit as usize {
        records.truncate(limit as usize);
        records.last()
    } else {
        None
    }
}

fn item(t: &ThumbnailRecord, signer: Option<&UrlSigner>) -> ThumbnailItem {
    ThumbnailItem {
        thumbnail_id: t.thumbnail_id.to_string(),
        updated_at: t.updated_at,
        result: ResultView::new(&t.result, &t.thumbnail_id, t.environment, &t.tenant, signer),
    }
}

fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

fn decode_cursor(cursor: &str) -> Option<String> {
    String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()
}

/// A job cursor's key: `created_at` milliseconds, a dot, the job id.
fn job_key(text: &str) -> Option<JobKey> {
    let (at, id) = text.split_once('.')?;
    Some(JobKey {
        created_at: Timestamp(at.parse().ok()?),
        id: JobId::parse(id).ok()?,
    })
}

fn bad_cursor() -> ApiError {
    ApiError::invalid_query(
        "cursor",
        "`cursor` is not one this listing gave: pass `nextCursor` as it came",
    )
}
