//! `/v1/uploads`: store an original now, attach it to a thumbnail later by its ticket
//! (`{"uploadTicket": …}`). Uploads expire ([`ApiOptions::upload_ttl`]); a sweeper deletes
//! them.
//!
//! [`ApiOptions::upload_ttl`]: crate::ApiOptions::upload_ttl

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use thumbd_codes::Code;
use thumbd_jobs::{BlobKey, Environment, Timestamp, UploadRecord, UploadTicket};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ErrorBody};
use crate::handlers::thumbnails::check_image;
use crate::request::{BodyKind, QueryParams, body_kind, read_body, ticket_not_found};

/// Room for multipart framing (boundaries, part headers, other small fields) on top of
/// the image limit.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The answer to an upload, and `GET /v1/uploads/{ticket}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadView {
    /// Give this to a create as `{"uploadTicket": …}`.
    #[schema(example = "up_0123456789abcdef0123456789abcdef")]
    pub upload_ticket: String,
    /// This upload's URL path.
    pub url: String,
    /// RFC 3339; after it the ticket is unknown.
    pub expires_at: Timestamp,
    /// The checked media type: `image/png` or `image/jpeg`.
    pub content_type: String,
    /// Size of the original.
    pub bytes: u64,
}

impl From<&UploadRecord> for UploadView {
    fn from(u: &UploadRecord) -> Self {
        UploadView {
            upload_ticket: u.ticket.to_string(),
            url: upload_url(&u.ticket),
            expires_at: u.expires_at,
            content_type: u.content_type.clone(),
            bytes: u.bytes,
        }
    }
}

/// A `multipart/form-data` upload: the image in the field `file`.
// Read by hand (`read_multipart`, with our own size limit): this type only describes the
// body in the OpenAPI document.
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "never built: it only describes the multipart body"
)]
struct UploadForm {
    /// The image, PNG or JPEG: the part's `Content-Type` when it names one, else sniffed from
    /// the bytes. Other fields are ignored (their bytes count toward the limit).
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
}

fn upload_url(ticket: &UploadTicket) -> String {
    format!("/v1/uploads/{ticket}")
}

/// Upload an original.
///
/// A binary body (`image/png`, `image/jpeg`) or `multipart/form-data` with the image in the
/// field `file`. Checked like a create (type, magic bytes, header, limits), stored, and
/// answered 201 with its ticket, which a create takes as `{"uploadTicket"}` until it expires.
#[utoipa::path(
    post,
    path = "/v1/uploads",
    operation_id = "createUpload",
    tag = "uploads",
    security(("bearer" = ["thumbnails:write"])),
    params(
        ("environment" = Option<Environment>, Query, nullable = false, description = "When given, only creates in this environment may use the ticket; else either environment of the uploading tenant"),
    ),
    request_body(
        description = "The image, or a form with the image in the field `file`",
        content(("image/png"), ("image/jpeg"), ("image/webp"), ("image/gif"), (UploadForm = "multipart/form-data")),
    ),
    responses(
        (status = 201, description = "Stored", body = UploadView,
            headers(("Location" = String, description = "The upload's URL, `/v1/uploads/{ticket}`"))),
        (status = 400, description = "`InvalidRequestBody`: the multipart body is malformed or has no field `file`", body = ErrorBody),
        (status = 413, description = "`RequestTooLarge`: over the image size limit", body = ErrorBody),
        (status = 422, description = "`InvalidThumbnailRequest`, `details[0].code` saying why: `MissingRequiredHeader`, `InvalidHeaderValue` (a type other than PNG, JPEG — or WebP, GIF where `accept_formats` has them — or multipart, or a multipart without boundary), `InvalidThumbnailFormat`, `ThumbnailTooSmall`, `ImageDimensionsTooLarge`, `CorruptImage`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store or blob store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn post(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let environment = QueryParams::parse(query.as_deref())?.optional_environment()?;
    let caller = state.auth.authorize(&headers, Scope::Write, environment)?;
    let limits = &state.options.spec_limits;
    let (kind, bytes) = if let Some(boundary) = multipart_boundary(&headers)? {
        read_multipart(&headers, body, boundary, limits).await?
    } else {
        let kind = body_kind(&headers, limits.accept_formats)?;
        if kind == BodyKind::Json {
            return Err(ApiError::invalid_thumbnail(
                Code::InvalidHeaderValue,
                "upload the image itself (image/png, image/jpeg) or as multipart/form-data",
                Some("content-type"),
            ));
        }
        (
            kind,
            read_body(&headers, body, limits.max_input_bytes).await?,
        )
    };
    state.metrics.received(bytes.len());
    check_image(kind, &bytes, limits)?;

    let ticket = UploadTicket::generate();
    let now = Timestamp::now();
    let record = UploadRecord {
        blob_key: BlobKey::upload(&ticket),
        ticket,
        tenant: caller.tenant,
        environment,
        content_type: kind.media_type().to_owned(),
        bytes: bytes.len() as u64,
        created_at: now,
        expires_at: now.plus(state.options.upload_ttl),
    };
    state.blobs.put(&record.blob_key, bytes).await?;
    if let Err(e) = state.store.create_upload(&record).await {
        if let Err(e) = state.blobs.delete(&record.blob_key).await {
            tracing::warn!(blob = %record.blob_key, error = %e, "cannot delete an unrecorded upload");
        }
        return Err(e.into());
    }
    tracing::info!(ticket = %record.ticket, bytes = record.bytes, "upload stored");
    let view = UploadView::from(&record);
    let mut response = (StatusCode::CREATED, axum::Json(&view)).into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&view.url).expect("a ticket is a valid header value"),
    );
    Ok(response)
}

/// An upload's metadata.
///
/// While it has not expired.
#[utoipa::path(
    get,
    path = "/v1/uploads/{ticket}",
    operation_id = "getUpload",
    tag = "uploads",
    security(("bearer" = ["thumbnails:read"])),
    params(("ticket" = String, Path, description = "The upload ticket")),
    responses(
        (status = 200, description = "The upload", body = UploadView),
        (status = 404, description = "`UploadTicketNotFound`: no such ticket, or it has expired", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(ticket): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = state.auth.authorize(&headers, Scope::Read, None)?;
    let ticket = UploadTicket::parse(&ticket).map_err(|_| ticket_not_found())?;
    let upload = state
        .store
        .upload(&ticket, Timestamp::now())
        .await?
        // Another tenant's upload is as unknown as a ticket never issued.
        .filter(|u| u.tenant == caller.tenant)
        .ok_or_else(ticket_not_found)?;
    Ok(axum::Json(UploadView::from(&upload)).into_response())
}

/// The boundary of a `multipart/form-data` body; `None` for any other type.
fn multipart_boundary(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or("");
    let essence = value.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return Ok(None);
    }
    multer::parse_boundary(value).map(Some).map_err(|_| {
        ApiError::invalid_thumbnail(
            Code::InvalidHeaderValue,
            "multipart/form-data needs a boundary parameter",
            Some("content-type"),
        )
    })
}

/// Reads the field `file` of a multipart body, never holding more than `limit` bytes of it
/// (413 as soon as it is over, or the whole body is over the limit plus framing). Its type
/// is the part's `Content-Type` when that names PNG or JPEG, else sniffed from the bytes.
async fn read_multipart(
    headers: &HeaderMap,
    body: Body,
    boundary: String,
    limits: &thumbcore::Limits,
) -> Result<(BodyKind, Bytes), ApiError> {
    let (limit, accepted) = (limits.max_input_bytes, limits.accept_formats);
    let whole = limit + MULTIPART_OVERHEAD;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > whole as u64) {
        return Err(ApiError::too_large(limit));
    }
    let stream = body.into_data_stream();
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(whole as u64)
            .per_field(limit as u64),
    );
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let too_large_or_bad = |e: multer::Error| match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            ApiError::too_large(limit)
        }
        other => ApiError::invalid_body(format!("the multipart body is malformed: {other}")),
    };
    while let Some(mut field) = multipart.next_field().await.map_err(too_large_or_bad)? {
        if field.name() != Some("file") {
            continue; // other fields are ignored (their bytes count toward the limit)
        }
        let declared = field
            .content_type()
            .map(|m| m.essence_str().to_ascii_lowercase());
        let mut buf = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(too_large_or_bad)? {
            if buf.len() + chunk.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            buf.extend_from_slice(&chunk);
        }
        let bytes = buf.freeze();
        let kind = match declared.as_deref() {
            None | Some("application/octet-stream") => sniffed(&bytes, accepted)?,
            Some(other) => match thumbcore::ImageFormat::from_content_type(other, accepted) {
                Ok(format) => BodyKind::Image(format),
                Err(_) => {
                    return Err(ApiError::invalid_thumbnail(
                        Code::InvalidHeaderValue,
                        format!(
                            "the file part's type {other:?} is not supported: use {}",
                            accepted.media_types()
                        ),
                        Some("file"),
                    ));
                }
            },
        };
        return Ok((kind, bytes));
    }
    Err(ApiError::invalid_body("the multipart body has no field named `file`").with_target("file"))
}

fn sniffed(bytes: &[u8], accepted: thumbcore::InputFormats) -> Result<BodyKind, ApiError> {
    match thumbcore::ImageFormat::sniff(bytes) {
        Some(format) if accepted.contains(format) => Ok(BodyKind::Image(format)),
        _ => Err(ApiError::invalid_thumbnail(
            Code::InvalidThumbnailFormat,
            format!("the file is not {}", accepted.media_types()),
            Some("file"),
        )),
    }
}
