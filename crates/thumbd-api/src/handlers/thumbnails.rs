//! `/v1/thumbnails`: create or replace (both forms), get (and HEAD), delete.

use std::time::Duration;
use thumbd_codes::Code;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use thumbd_jobs::{
    BlobKey, Claim, Environment, FinishedJob, IdempotencyKey, JobFailure, JobId, JobMessage,
    JobRecord, JobSource, JobStatus, LocalRun, Namespace, ThumbnailId, Timestamp,
};

use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ErrorBody};
use crate::request::{
    BodyKind, JsonSource, MAX_JSON_BYTES, Peer, QueryParams, authorized_target, body_kind,
    client_id, idempotency_key, json_source, path_thumbnail_id, preference, read_body,
    ticket_not_found,
};
use thumbd_jobs::views::{StatusView, etag, status_url, thumbnail_url};

/// How long an `Idempotency-Key` names its first job (SPEC §2).
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

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
/// The body is the image (`image/png` or `image/jpeg`; `image/jpg` is accepted as an alias),
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
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–255 visible ASCII characters. The same key from the same client in the same environment within 24 h answers with the first request's job instead of starting another"),
    ),
    request_body(
        description = "The image, or JSON naming where it is",
        content(("image/png"), ("image/jpeg"), (JsonSource = "application/json")),
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
    create(state, environment, id, peer, headers, body).await
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
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "1–255 visible ASCII characters. The same key from the same client in the same environment within 24 h answers with the first request's job instead of starting another"),
    ),
    request_body(
        description = "The image, or JSON naming where it is",
        content(("image/png"), ("image/jpeg"), (JsonSource = "application/json")),
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
    let environment = QueryParams::parse(query.as_deref())?.environment()?;
    create(
        state,
        environment,
        path_thumbnail_id(&id)?,
        peer,
        headers,
        body,
    )
    .await
}

/// A create's source, once read and checked.
struct Source {
    /// Where the image is.
    origin: Origin,
    /// How long to wait for the job unless the client says otherwise.
    default_wait: Duration,
    /// For `thumbd_jobs_accepted_total`: `image`, `upload` or `url`.
    kind: &'static str,
}

/// Where a create's image is.
enum Origin {
    /// Its bytes, stored at the job's [`BlobKey::original`] before anything else (the
    /// claim check).
    Bytes(Bytes),
    /// A URL a worker downloads.
    Url(String),
}

/// The cheap synchronous checks, then original blob → job record → queue → wait.
async fn create(
    state: AppState,
    environment: Environment,
    id: ThumbnailId,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = state
        .auth
        .authorize(&headers, Scope::Write, Some(environment))?;
    let namespace = Namespace::new(caller.tenant.clone(), environment);
    let idempotency = idempotency_key(&headers, client_id(&caller, peer), &namespace)?;
    let fresh_after = Timestamp::now().minus(IDEMPOTENCY_WINDOW);
    if let Some(key) = &idempotency
        && let Some(first) = state.store.idempotent_job(key, fresh_after).await?
    {
        return replay(&state, first, &id, &headers).await;
    }

    let job_id = JobId::new();
    let source = read_source(&state, &namespace, &headers, body).await?;
    let (job_source, original) = match &source.origin {
        Origin::Bytes(bytes) => {
            let key = BlobKey::original(job_id);
            (
                JobSource::Blob {
                    blob_key: key.clone(),
                },
                Some((key, bytes)),
            )
        }
        Origin::Url(url) => (JobSource::Url { url: url.clone() }, None),
    };
    let message = JobMessage {
        job_id: Some(job_id),
        tenant: namespace.tenant,
        environment,
        thumbnail_id: id,
        source: job_source,
        reply_to: None,
    };
    let record = JobRecord::queued(job_id, &message, Timestamp::now());
    // The record first; then, unless this process's worker takes the job at once, the
    // claim check and the message: whatever fails, no message points at something missing.
    let claim = match &idempotency {
        Some(key) => {
            state
                .store
                .create_job_idempotent(&record, key, fresh_after)
                .await
        }
        None => state
            .store
            .create_job(&record)
            .await
            .map(|_| Claim::Created),
    };
    if let Claim::Existing(first) = claim? {
        // A concurrent request with the same key won: answer with its job.
        return replay(&state, first, &record.thumbnail_id, &headers).await;
    }
    let pref = preference(&headers, source.default_wait, state.options.max_wait);
    let deadline = tokio::time::Instant::now() + pref.wait;
    // Subscribed before the job can run, so no announcement of it can be missed and the
    // wait needs no first read of a record just written.
    let events = (!pref.wait.is_zero()).then(|| state.events.subscribe());
    // `thumbd serve`: a create that waits runs at once on this process's worker when it has
    // room, its original in memory (`LocalWorker`). Accepted means answered: 201 once it
    // has finished; overrunning the wait, or failing transiently, it is queued like any
    // other before its 202.
    let mut ran_locally = false;
    if !pref.wait.is_zero()
        && let (Some((_, bytes)), Some(local)) = (&original, &state.local_worker)
        && let Some(run) = local.try_run(&record, Bytes::clone(bytes))
    {
        ran_locally = matches!(
            tokio::time::timeout_at(deadline, run).await,
            Ok(Ok(LocalRun::Finished))
        );
    }
    if !ran_locally {
        // A create answered at once has its original made durable and its job marked
        // published now; a waiting one only if it is answered unfinished (below): most
        // finish first, their originals deleted unwritten, and the sweeper republishes
        // unfinished jobs alone.
        let answered_now = events.is_none();
        if let Err(e) = enqueue(&state, &message, original.as_ref(), answered_now).await {
            let original = original.as_ref().map(|(k, _)| k);
            not_accepted(&state, &record, original, idempotency.as_ref(), &e).await;
            return Err(e.into());
        }
        if answered_now {
            state.publish_marks.mark(job_id);
        }
    }
    state.metrics.accepted(source.kind);
    tracing::info!(job_id = %job_id, thumbnail_id = %record.thumbnail_id, %environment, source = source.kind, ran_locally, "job accepted");

    // `respond-async` (wait 0): the record just written is the answer; no read back.
    let record = match events {
        None => record,
        Some(events) if ran_locally => finished_record(&state, job_id, events)
            .await?
            .unwrap_or(record),
        Some(events) => {
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            let waited = wait_from(&state, job_id, wait, events, Some(record.clone())).await;
            if !matches!(&waited, Ok(Some(r)) if r.status.is_finished()) {
                state.publish_marks.mark(job_id);
                // Accepted unfinished: from this answer on, the job must survive a crash.
                // (Should the sync fail, the client gets 503, and the job may still run.)
                if waited.is_ok()
                    && let Some((key, _)) = &original
                {
                    state.blobs.sync(key).await?;
                }
            }
            waited?.unwrap_or(record)
        }
    };
    let mut response = job_response(&record)?;
    if let Some(applied) = pref.applied {
        response
            .headers_mut()
            .insert("preference-applied", HeaderValue::from_static(applied));
    }
    Ok(response)
}

/// Stores the claim-check `original` (if the job has one; `synced`: durable at once), then
/// pushes `message`.
async fn enqueue(
    state: &AppState,
    message: &JobMessage,
    original: Option<&(BlobKey, &Bytes)>,
    synced: bool,
) -> thumbd_jobs::Result<()> {
    if let Some((key, bytes)) = original {
        let bytes = Bytes::clone(bytes);
        if synced {
            state.blobs.put(key, bytes).await?;
        } else {
            state.blobs.put_unsynced(key, bytes).await?;
        }
    }
    state.queue.push(message).await
}

/// The record of a job a local run has just finished: from its announcement, already in
/// `events`, or else read from the store.
async fn finished_record(
    state: &AppState,
    id: JobId,
    mut events: tokio::sync::broadcast::Receiver<FinishedJob>,
) -> Result<Option<JobRecord>, ApiError> {
    while let Ok(done) = events.try_recv() {
        if done.id == id {
            if let Some(record) = done.record {
                return Ok(Some(JobRecord::clone(&record)));
            }
            break;
        }
    }
    Ok(state.store.job(id).await?)
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
    let kind = body_kind(headers)?;
    let limits = &state.options.spec_limits;
    if kind != BodyKind::Json {
        let bytes = read_body(headers, body, limits.max_input_bytes).await?;
        state.metrics.received(bytes.len());
        check_image(kind, &bytes, limits)?;
        return Ok(Source {
            origin: Origin::Bytes(bytes),
            default_wait: state.options.default_wait,
            kind: "image",
        });
    }
    let bytes = read_body(headers, body, MAX_JSON_BYTES).await?;
    match json_source(&bytes)? {
        JsonSource::Url(url) => Ok(Source {
            origin: Origin::Url(url),
            default_wait: Duration::ZERO,
            kind: "url",
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
                origin: Origin::Bytes(bytes),
                default_wait: state.options.max_wait,
                kind: "upload",
            })
        }
    }
}

/// The answer for a create whose `Idempotency-Key` names job `first`: that job's answer
/// (waited for as usual), marked `Idempotent-Replayed: true`.
/// A key reused for another thumbnail is refused: the client mixed up its keys.
async fn replay(
    state: &AppState,
    first: JobId,
    target: &ThumbnailId,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let pref = preference(headers, state.options.default_wait, state.options.max_wait);
    let events = state.events.subscribe();
    let known = state.store.job(first).await?;
    if let Some(known) = &known
        && known.thumbnail_id != *target
    {
        return Err(ApiError::invalid_thumbnail(
            Code::InvalidHeaderValue,
            format!(
                "this Idempotency-Key was used in the last 24 h for thumbnail {:?}, not this one",
                known.thumbnail_id.as_str()
            ),
            Some("idempotency-key"),
        ));
    }
    let Some(record) = wait_from(state, first, pref.wait, events, known).await? else {
        // Keys live 24 h and jobs at least 24 h after finishing: this is a bug or an edit.
        tracing::error!(job_id = %first, "an idempotency key names a job that does not exist");
        return Err(ApiError::internal());
    };
    tracing::info!(job_id = %first, "idempotent replay");
    let mut response = match job_response(&record) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

async fn delete_blob(state: &AppState, key: &BlobKey, what: &str) {
    if let Err(e) = state.blobs.delete(key).await {
        tracing::warn!(blob = %key, error = %e, "cannot delete {what}");
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
    thumbcore::check_declared_type(kind.media_type(), bytes).map_err(image_error)?;
    let info = thumbcore::probe(bytes).map_err(image_error)?;
    limits.check(&info).map_err(image_error)
}

/// Waits up to `wait` for job `id` to finish, from `record` — read (or just written) after
/// `events` subscribed, so no announcement is missed. Wakes on [`JobEvents`] (this
/// process's workers, or the store's notifications relayed), and polls the store (the
/// truth) only as a fallback, every 100 ms growing to 1 s.
///
/// [`JobEvents`]: thumbd_jobs::JobEvents
async fn wait_from(
    state: &AppState,
    id: JobId,
    wait: Duration,
    mut events: tokio::sync::broadcast::Receiver<FinishedJob>,
    mut record: Option<JobRecord>,
) -> Result<Option<JobRecord>, ApiError> {
    let deadline = tokio::time::Instant::now() + wait;
    // Finished jobs are announced (`JobEvents`: by this process's workers, or relayed from
    // the store's notifications); polling only covers an announcement that was missed.
    let mut poll = Duration::from_millis(100);
    loop {
        if let Some(r) = &record
            && r.status.is_finished()
        {
            // Read, not announced: its worker may not have made it durable yet, and a 201
            // may follow (announced records already are).
            state.store.make_durable(id).await?;
            return Ok(record);
        }
        if record.is_none() {
            return Ok(record);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(record);
        }
        let nap = poll.min(deadline - now);
        let heard = tokio::time::timeout(nap, async {
            loop {
                match events.recv().await {
                    Ok(done) if done.id == id => return done.record,
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return None,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        std::future::pending::<()>().await;
                    }
                }
            }
        })
        .await;
        // The worker that finished it sent the record it stored: no need to read it back.
        if let Ok(Some(finished)) = heard {
            return Ok(Some(JobRecord::clone(&finished)));
        }
        poll = (poll * 2).min(Duration::from_secs(1));
        record = state.store.job(id).await?;
    }
}

/// 201 when succeeded, the job's error when failed, else 202 with `Location` and
/// `Retry-After`.
fn job_response(record: &JobRecord) -> Result<Response, ApiError> {
    let view = StatusView::from(record);
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

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("URLs we build are valid header values")
}

/// The `{id}` and namespace of a request on one thumbnail, once `scope` is authorized.
fn target(
    state: &AppState,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<(Namespace, ThumbnailId), ApiError> {
    authorized_target(state, query, headers, scope, || path_thumbnail_id(id))
}

/// Get a thumbnail.
///
/// The stored thumbnail's bytes, with its `ETag`; `If-None-Match` answers 304.
#[utoipa::path(
    get,
    path = "/v1/thumbnails/{id}",
    operation_id = "getThumbnail",
    tag = "thumbnails",
    security(("bearer" = ["thumbnails:read"])),
    params(
        ("id" = String, Path, description = "The thumbnailId: 1–255 bytes of UTF-8 once percent-decoded, any characters"),
        ("environment" = Environment, Query, description = "The namespace"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "ETags the client holds (or `*`): 304 when one matches"),
    ),
    responses(
        (status = 200, description = "The thumbnail (PNG unless the server is configured for JPEG or WebP)",
            content(("image/png"), ("image/jpeg"), ("image/webp")),
            headers(
                ("ETag" = String, description = "A strong tag from the content's hash"),
                ("Cache-Control" = String, description = "`private, no-cache`: replaced in place at the same URL, so revalidate (cheap: 304)"),
                ("Content-Length" = u64, description = "The thumbnail's size in bytes"),
            )),
        (status = 304, description = "Not modified: `If-None-Match` matched",
            headers(
                ("ETag" = String, description = "A strong tag from the content's hash"),
                ("Cache-Control" = String, description = "`private, no-cache`"),
            )),
        (status = 400, description = "`InvalidQueryParameter` (target: `environment` or `thumbnailId`)", body = ErrorBody),
        (status = 404, description = "`ThumbnailNotFound`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store or blob store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (namespace, id) = target(&state, &id, query.as_deref(), &headers, Scope::Read)?;
    let Some(mut record) = state.store.thumbnail(&namespace, &id).await? else {
        return Err(not_found(&id, namespace.environment));
    };
    let mut response = if if_none_match(&headers, &etag(&record.result.etag)) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        // A replace (or delete) finishing between reading the record and reading its blob
        // deletes the blob the record named: read the record again and serve what it
        // names now. Only a record that stays put while its blob is missing is damage.
        let mut tries = 0;
        let bytes = loop {
            if let Some(bytes) = state.blobs.get(&record.result.blob_key).await? {
                break bytes;
            }
            let Some(now) = state.store.thumbnail(&namespace, &id).await? else {
                return Err(not_found(&id, namespace.environment));
            };
            tries += 1;
            if now.result.blob_key == record.result.blob_key || tries == 3 {
                tracing::error!(blob = %record.result.blob_key, "a thumbnail's blob is missing");
                return Err(ApiError::internal());
            }
            record = now;
        };
        state.metrics.served(bytes.len());
        let mut r = Bytes::into_response(bytes);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&record.result.content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
        r
    };
    let tag = etag(&record.result.etag);
    let h = response.headers_mut();
    h.insert(header::ETAG, header_value(&tag));
    // Replaced in place at the same URL: caches must revalidate (cheap: 304 on the ETag).
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}

/// A thumbnail's headers.
///
/// What `GET` answers, without the bytes.
#[utoipa::path(
    head,
    path = "/v1/thumbnails/{id}",
    operation_id = "headThumbnail",
    tag = "thumbnails",
    security(("bearer" = ["thumbnails:read"])),
    params(
        ("id" = String, Path, description = "The thumbnailId: 1–255 bytes of UTF-8 once percent-decoded, any characters"),
        ("environment" = Environment, Query, description = "The namespace"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "ETags the client holds (or `*`): 304 when one matches"),
    ),
    responses(
        (status = 200, description = "The thumbnail exists; no body",
            headers(
                ("Content-Type" = String, description = "`image/png`, `image/jpeg` or `image/webp`"),
                ("Content-Length" = u64, description = "The thumbnail's size in bytes"),
                ("ETag" = String, description = "A strong tag from the content's hash"),
                ("Cache-Control" = String, description = "`private, no-cache`"),
            )),
        (status = 304, description = "Not modified: `If-None-Match` matched",
            headers(
                ("ETag" = String, description = "A strong tag from the content's hash"),
                ("Cache-Control" = String, description = "`private, no-cache`"),
            )),
        (status = 400, description = "`InvalidQueryParameter` (target: `environment` or `thumbnailId`); HEAD answers carry no body", body = ErrorBody),
        (status = 404, description = "`ThumbnailNotFound`; HEAD answers carry no body", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`; HEAD answers carry no body", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn head(
    state: State<AppState>,
    id: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The same answer; the server sends no body for HEAD.
    get(state, id, query, headers).await
}

fn if_none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().any(|v| {
        v.to_str().unwrap_or("").split(',').any(|t| {
            let t = t.trim();
            t == "*" || t == tag || t.strip_prefix("W/") == Some(tag)
        })
    })
}

fn not_found(id: &ThumbnailId, environment: Environment) -> ApiError {
    ApiError::not_found(
        Code::ThumbnailNotFound,
        format!("there is no thumbnail {:?} in {environment}", id.as_str()),
    )
}

/// Delete a thumbnail.
#[utoipa::path(
    delete,
    path = "/v1/thumbnails/{id}",
    operation_id = "deleteThumbnail",
    tag = "thumbnails",
    security(("bearer" = ["thumbnails:write"])),
    params(
        ("id" = String, Path, description = "The thumbnailId: 1–255 bytes of UTF-8 once percent-decoded, any characters"),
        ("environment" = Environment, Query, description = "The namespace"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`InvalidQueryParameter` (target: `environment` or `thumbnailId`)", body = ErrorBody),
        (status = 404, description = "`ThumbnailNotFound`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (namespace, id) = target(&state, &id, query.as_deref(), &headers, Scope::Write)?;
    let Some(deleted) = state.store.delete_thumbnail(&namespace, &id).await? else {
        return Err(not_found(&id, namespace.environment));
    };
    delete_blob(&state, &deleted.result.blob_key, "a thumbnail's blob").await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The job could not be queued (the blob store or the queue refused; the client gets 503):
/// its record says so, so nobody waits for it; then its original (if it got stored) is
/// dropped, and its idempotency key freed (a retry must start a new job). Should the broker
/// still deliver a message it timed out on, the worker finds the job finished and skips it.
async fn not_accepted(
    state: &AppState,
    record: &JobRecord,
    original: Option<&BlobKey>,
    idempotency: Option<&IdempotencyKey>,
    error: &thumbd_jobs::Error,
) {
    let id = record.id;
    tracing::warn!(job_id = %id, %error, "the job could not be queued");
    // The cause stays in the log: a job's record is the client's to read.
    let failure = JobFailure {
        code: Code::ServiceUnavailable,
        message: "the job could not be queued; retry later".into(),
    };
    let recorded = match state
        .store
        .finish_failed(id, &failure, Timestamp::now())
        .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(job_id = %id, error = %e, "cannot record a refused job");
            false
        }
    };
    if let Some(key) = idempotency
        && let Err(e) = state.store.release_idempotency_key(key, id).await
    {
        tracing::warn!(job_id = %id, error = %e, "cannot free the idempotency key of a refused job");
    }
    // Kept while the job may still run (its message may have reached the broker after all):
    // a worker deletes it when the job finishes.
    if recorded && let Some(original) = original {
        delete_blob(state, original, "a refused job's original").await;
    }
}
