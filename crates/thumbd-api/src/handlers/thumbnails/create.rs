//! Create or replace a thumbnail: `POST /v1/thumbnails` and `PUT /v1/thumbnails/{id}`.

use std::time::Duration;
use thumbd_codes::Code;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use thumbd_jobs::{
    Accepted, CreateJob, Environment, JobRecord, JobStatus, Namespace, NewSource, Refused,
    ThumbnailId, Timestamp,
};

use super::header_value;
use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ErrorBody};
use crate::request::{
    BodyKind, JsonSource, MAX_JSON_BYTES, Peer, QueryParams, body_kind, client_id, idempotency_key,
    json_create, path_thumbnail_id, preference, read_body, ticket_not_found,
};
use crate::views::{StatusView, status_url, thumbnail_url};

/// The answers of a create, in either form.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // a description for the OpenAPI document; never built
enum CreateResponses {
    #[response(status = 201, description = "Done within the wait: the job, succeeded, with the thumbnail's metadata",
        headers(
            ("Location" = String, description = "The thumbnail's URL"),
            ("Preference-Applied" = String, description = "`wait` or `respond-async`, when `Prefer` asked for it"),
            ("Idempotent-Replayed" = String, description = "`true` when this answers an earlier request with the same `Idempotency-Key`"),
        ))]
    Created(StatusView),
    #[response(status = 202, description = "Accepted, not finished within the wait: the job's status",
        headers(
            ("Location" = String, description = "The job's status URL, `/v1/status/{jobId}`"),
            ("Retry-After" = u32, description = "`1`: poll the status after it"),
            ("Preference-Applied" = String, description = "`wait` or `respond-async`, when `Prefer` asked for it"),
            ("Idempotent-Replayed" = String, description = "`true` when this answers an earlier request with the same `Idempotency-Key`"),
        ))]
    Accepted(StatusView),
    #[response(
        status = 400,
        description = "`InvalidQueryParameter` (target: `environment` or `thumbnailId`), or `InvalidRequestBody`: the JSON is not exactly `{\"url\"}` or `{\"uploadTicket\"}`, or the URL is not absolute http(s) without credentials"
    )]
    BadRequest(ErrorBody<'static>),
    #[response(
        status = 404,
        description = "`UploadTicketNotFound`: the ticket does not exist or has expired"
    )]
    NotFound(ErrorBody<'static>),
    #[response(
        status = 413,
        description = "`RequestTooLarge`: over the image (or JSON) size limit"
    )]
    TooLarge(ErrorBody<'static>),
    #[response(
        status = 422,
        description = "`InvalidThumbnailRequest`, `details[0].code` saying why: `MissingRequiredHeader`, `InvalidHeaderValue` (Content-Type, or Idempotency-Key), `InvalidThumbnailFormat`, `ThumbnailTooSmall`, `ImageDimensionsTooLarge`, `CorruptImage`; found at once, or by the worker within the wait (which may also find `ProcessingTimeout`)"
    )]
    Invalid(ErrorBody<'static>),
    #[response(
        status = 502,
        description = "`SourceFetchFailed`, `SourceNotAllowed` or `SourceTooLarge`: the URL source failed within the wait"
    )]
    SourceFailed(ErrorBody<'static>),
    #[response(status = 503, description = "`ServiceUnavailable`: the store, queue or blob store does not answer",
        headers(("Retry-After" = u32, description = "Seconds to wait before trying again")))]
    Unavailable(ErrorBody<'static>),
}

/// Create or replace a thumbnail (ClassKit form).
///
/// The body is the image (`image/png` or `image/jpeg`; `image/jpg` is accepted as an alias;
/// `image/webp` and `image/gif` where the server's `accept_formats` has them: the first frame
/// of an animation, and the result says `animated: true`),
/// or JSON naming where it is: `{"url"}` (a worker downloads it; answered 202 at once unless
/// `Prefer: wait=N`) or `{"uploadTicket"}` (a stored upload; synchronous: waits up to the
/// longest wait). Type, magic bytes and the dimensions in the image header are checked at
/// once; a worker makes the thumbnail. Done within the wait (2 s by default, see `Prefer`):
/// 201; otherwise 202 and a status URL to poll. Replacing keeps serving the old thumbnail
/// until the new one has succeeded.
#[utoipa::path(
    post,
    path = "/v1/thumbnails",
    operation_id = "createThumbnail",
    tag = "thumbnails",
    security(("bearer" = ["thumbnails:write"])),
    params(
        ("thumbnailId" = String, Query, description = "The thumbnail's id: 1–255 bytes of UTF-8 once percent-decoded, any characters"),
        ("environment" = Environment, Query, description = "The namespace"),
        ("Prefer" = Option<String>, Header, nullable = false, description = "`respond-async` (answer 202 at once) or `wait=N` (wait up to N seconds for the job; capped by the server, 10 s by default)"),
        ("profile" = Option<String>, Query, description = "The profile whose renditions to make (README, Renditions); a JSON body may say `\"profile\"` instead. Default: the server's `default_profile`"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–255 visible ASCII characters. The same key from the same client in the same environment within 24 h answers with the first request's job instead of starting another"),
    ),
    request_body(
        description = "The image (`image/webp` and `image/gif` only where the server's `accept_formats` has them), or JSON naming where it is (and, optionally, `\"profile\": \"NAME\"`)",
        content(("image/png"), ("image/jpeg"), ("image/webp"), ("image/gif"), (JsonSource = "application/json")),
    ),
    responses(CreateResponses)
)]
pub async fn post(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query.as_deref())?;
    let environment = query.environment()?;
    let id = query.thumbnail_id()?;
    let profile = query.one("profile")?.map(str::to_owned);
    create(state, environment, id, profile, peer, headers, body).await
}

/// Create or replace a thumbnail (path form).
///
/// The same as `POST /v1/thumbnails` with the id in the path.
#[utoipa::path(
    put,
    path = "/v1/thumbnails/{id}",
    operation_id = "putThumbnail",
    tag = "thumbnails",
    security(("bearer" = ["thumbnails:write"])),
    params(
        ("id" = String, Path, description = "The thumbnailId: 1–255 bytes of UTF-8 once percent-decoded, any characters"),
        ("environment" = Environment, Query, description = "The namespace"),
        ("Prefer" = Option<String>, Header, nullable = false, description = "`respond-async` (answer 202 at once) or `wait=N` (wait up to N seconds for the job; capped by the server, 10 s by default)"),
        ("profile" = Option<String>, Query, description = "The profile whose renditions to make (README, Renditions); a JSON body may say `\"profile\"` instead. Default: the server's `default_profile`"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–255 visible ASCII characters. The same key from the same client in the same environment within 24 h answers with the first request's job instead of starting another"),
    ),
    request_body(
        description = "The image (`image/webp` and `image/gif` only where the server's `accept_formats` has them), or JSON naming where it is (and, optionally, `\"profile\": \"NAME\"`)",
        content(("image/png"), ("image/jpeg"), ("image/webp"), ("image/gif"), (JsonSource = "application/json")),
    ),
    responses(CreateResponses)
)]
pub async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let query = QueryParams::parse(query.as_deref())?;
    let environment = query.environment()?;
    let profile = query.one("profile")?.map(str::to_owned);
    create(
        state,
        environment,
        path_thumbnail_id(&id)?,
        profile,
        peer,
        headers,
        body,
    )
    .await
}

/// A create's source, once read and checked.
struct Source {
    /// Where the image is.
    origin: NewSource,
    /// How long to wait for the job unless the client says otherwise.
    default_wait: Duration,
    /// For `thumbd_jobs_accepted_total`: `image`, `upload` or `url`.
    kind: &'static str,
    /// The JSON body's `profile`, if any.
    profile: Option<String>,
}

/// The cheap synchronous checks, then the [`Intake`](thumbd_jobs::Intake) (record →
/// original → queue → wait), then the answer.
async fn create(
    state: AppState,
    environment: Environment,
    id: ThumbnailId,
    profile: Option<String>,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = state
        .auth
        .authorize(&headers, Scope::Write, Some(environment))?;
    let namespace = Namespace::new(caller.tenant.clone(), environment);
    let idempotency = idempotency_key(&headers, client_id(&caller, peer), &namespace)?;
    // A replay is answered before the body is read: it is the first request's answer.
    if let Some(key) = &idempotency {
        let pref = preference(&headers, state.options.default_wait, state.options.max_wait);
        if let Some(replayed) = state
            .intake
            .replay(key, &id, pref.wait)
            .await
            .map_err(refused)?
        {
            return Ok(replay_response(&state, replayed.record()));
        }
    }
    // Checked before the body is read: a typo costs no upload.
    if let Some(name) = &profile {
        check_profile(&state, name)?;
    }
    let source = read_source(&state, &namespace, &headers, body).await?;
    let profile = match (profile, source.profile) {
        (Some(query), Some(json)) if query != json => {
            return Err(ApiError::invalid_query(
                "profile",
                format!("the query names profile {query:?}, the body {json:?}: name one"),
            ));
        }
        (Some(name), _) => name,
        (None, Some(name)) => {
            check_profile(&state, &name)?;
            name
        }
        (None, None) => state
            .options
            .profiles
            .default_for(namespace.environment.as_str())
            .name
            .clone(),
    };
    let pref = preference(&headers, source.default_wait, state.options.max_wait);
    let accepted = state
        .intake
        .create(CreateJob {
            namespace,
            thumbnail_id: id,
            source: source.origin,
            idempotency,
            wait: pref.wait,
            profile: Some(profile),
        })
        .await
        .map_err(refused)?;
    let record = match accepted {
        // A concurrent create with the same key won.
        Accepted::Replayed(record) => return Ok(replay_response(&state, &record)),
        Accepted::Finished(record) | Accepted::Pending(record) => record,
    };
    state.metrics.accepted(source.kind);
    let mut response = job_response(&state, &record)?;
    if let Some(applied) = pref.applied {
        response
            .headers_mut()
            .insert("preference-applied", HeaderValue::from_static(applied));
    }
    Ok(response)
}

/// 400 `InvalidQueryParameter` (target `profile`) unless `name` is a configured profile.
fn check_profile(state: &AppState, name: &str) -> Result<(), ApiError> {
    let profiles = &state.options.profiles;
    if profiles.get(name).is_some() {
        return Ok(());
    }
    Err(ApiError::invalid_query(
        "profile",
        format!(
            "there is no profile {name:?}: known are {}",
            profiles.names().join(", ")
        ),
    ))
}

/// The answer for a job refused by the intake.
fn refused(refused: Refused) -> ApiError {
    match refused {
        Refused::KeyReused(_) => ApiError::invalid_thumbnail(
            Code::InvalidHeaderValue,
            refused.to_string(),
            Some("idempotency-key"),
        ),
        Refused::KeyLost(_) => ApiError::internal(),
        Refused::Backend(e) => e.into(),
    }
}

/// The first request's answer for a job an `Idempotency-Key` named, marked
/// `Idempotent-Replayed: true`.
fn replay_response(state: &AppState, record: &JobRecord) -> Response {
    let mut response = match job_response(state, record) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// Reads the body by its `Content-Type`: image bytes (checked), or JSON naming a URL (the
/// worker fetches it; answered 202 at once by default) or an upload ticket (its bytes are
/// copied to this job's original, so the job does not depend on the upload expiring
/// later; waited for up to the longest wait by default: a synchronous create).
async fn read_source(
    state: &AppState,
    namespace: &Namespace,
    headers: &HeaderMap,
    body: Body,
) -> Result<Source, ApiError> {
    let limits = &state.options.spec_limits;
    let kind = body_kind(headers, limits.accept_formats)?;
    if kind != BodyKind::Json {
        let bytes = read_body(headers, body, limits.max_input_bytes).await?;
        state.metrics.received(bytes.len());
        check_image(kind, &bytes, limits)?;
        return Ok(Source {
            origin: NewSource::Bytes(bytes),
            default_wait: state.options.default_wait,
            kind: "image",
            profile: None,
        });
    }
    let bytes = read_body(headers, body, MAX_JSON_BYTES).await?;
    let (source, profile) = json_create(&bytes)?;
    match source {
        JsonSource::Url(url) => Ok(Source {
            origin: NewSource::Url(url),
            default_wait: Duration::ZERO,
            kind: "url",
            profile,
        }),
        JsonSource::UploadTicket(ticket) => {
            let upload = state
                .store
                .upload(&ticket, Timestamp::now())
                .await?
                // Another tenant's upload, or one made for the other environment, is as
                // unknown as a ticket never issued.
                .filter(|u| {
                    u.tenant == namespace.tenant
                        && u.environment.is_none_or(|e| e == namespace.environment)
                })
                .ok_or_else(ticket_not_found)?;
            // Expired and purged between the two reads: the same answer as expired.
            let bytes = state
                .blobs
                .get(&upload.blob_key)
                .await?
                .ok_or_else(ticket_not_found)?;
            Ok(Source {
                origin: NewSource::Bytes(bytes),
                default_wait: state.options.max_wait,
                kind: "upload",
                profile,
            })
        }
    }
}

/// Magic bytes against the declared type, then the header's dimensions against the limits.
pub(crate) fn check_image(
    kind: BodyKind,
    bytes: &[u8],
    limits: &thumbcore::Limits,
) -> Result<(), ApiError> {
    let image_error = |e: thumbcore::Error| ApiError::from_image_code(e.code(), e.to_string());
    if bytes.is_empty() {
        return Err(ApiError::invalid_thumbnail(
            Code::InvalidThumbnailFormat,
            "the body is empty",
            Some("body"),
        ));
    }
    thumbcore::check_declared_type(kind.media_type(), bytes, limits.accept_formats)
        .map_err(image_error)?;
    let info = limits.probe(bytes).map_err(image_error)?;
    limits.check(&info).map_err(image_error)
}

/// 201 when succeeded, the job's error when failed, else 202 with `Location` and
/// `Retry-After`.
fn job_response(state: &AppState, record: &JobRecord) -> Result<Response, ApiError> {
    let view = StatusView::new(record, state.options.url_signer.as_ref());
    match record.status {
        JobStatus::Succeeded => {
            let mut r = (StatusCode::CREATED, axum::Json(view)).into_response();
            let location = thumbnail_url(&record.thumbnail_id, record.environment);
            r.headers_mut()
                .insert(header::LOCATION, header_value(&location));
            Ok(r)
        }
        JobStatus::Failed => {
            let e = record.error.as_ref();
            Err(ApiError::from_image_code(
                e.map_or(Code::InternalError, |e| e.code),
                e.map_or(String::new(), |e| e.message.clone()),
            ))
        }
        JobStatus::Queued | JobStatus::Processing => {
            let mut r = (StatusCode::ACCEPTED, axum::Json(view)).into_response();
            let h = r.headers_mut();
            h.insert(header::LOCATION, header_value(&status_url(record)));
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Ok(r)
        }
    }
}
