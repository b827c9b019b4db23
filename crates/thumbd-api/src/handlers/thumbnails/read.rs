//! One stored thumbnail: `GET` (and `HEAD`) its bytes, `DELETE` it.

use thumbd_codes::Code;

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use thumbd_jobs::{Environment, Namespace, ThumbnailId};

use super::{delete_blob, header_value, target};
use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ErrorBody};
use crate::request::{QueryParams, authorize_target, path_thumbnail_id};
use crate::signing::unix_now;
use crate::views::etag;

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
        ("v" = Option<String>, Query, description = "A version: the ETag without its quotes. Served only while it is current (else 404), with `Cache-Control: …, max-age=31536000, immutable` (`public` when fetched without a token)"),
        ("tenant" = Option<String>, Query, description = "In a signed URL: the tenant it was signed for (absent: `default`)"),
        ("expires" = Option<u64>, Query, description = "In a signed URL: when it stops working (unix seconds)"),
        ("sig" = Option<String>, Query, description = "In a signed URL, last: base64url HMAC-SHA256 of the path and the query before it; replaces the token"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "ETags the client holds (or `*`): 304 when one matches"),
    ),
    responses(
        (status = 200, description = "The thumbnail (PNG unless the server is configured for JPEG or WebP, lossy or lossless)",
            content(("image/png"), ("image/jpeg"), ("image/webp")),
            headers(
                ("ETag" = String, description = "A strong tag from the content's hash"),
                ("Cache-Control" = String, description = "`private, no-cache`: replaced in place at the same URL, so revalidate (cheap: 304); with `v`: `public` (no token needed) or `private`, `max-age=31536000, immutable`"),
                ("Content-Length" = u64, description = "The thumbnail's size in bytes"),
            )),
        (status = 304, description = "Not modified: `If-None-Match` matched",
            headers(
                ("ETag" = String, description = "A strong tag from the content's hash"),
                ("Cache-Control" = String, description = "`private, no-cache`"),
            )),
        (status = 400, description = "`InvalidQueryParameter` (target: `environment` or `thumbnailId`)", body = ErrorBody),
        (status = 403, description = "`InvalidSignature`: a signed URL that does not match or has expired; `InsufficientPermissions`", body = ErrorBody),
        (status = 404, description = "`ThumbnailNotFound`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store or blob store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(query.as_deref())?;
    // `anonymous`: no token was needed (a signed URL, a public read, auth off).
    let (namespace, id, anonymous) = match (&state.options.url_signer, query.as_deref()) {
        // A signed URL stands in for the token: its signature names the tenant.
        (Some(signer), Some(q)) if q.contains("&sig=") => {
            let tenant = signer.verify(uri.path(), q, unix_now())?;
            let id = path_thumbnail_id(&id)?;
            (Namespace::new(tenant, params.environment()?), id, true)
        }
        _ => {
            let (namespace, id, caller) =
                authorize_target(&state, &params, &headers, Scope::Read, || {
                    path_thumbnail_id(&id)
                })?;
            (namespace, id, caller.anonymous)
        }
    };
    // `v`: the version (ETag without quotes) a URL was made for; only that one is served.
    let version = params.one("v")?;
    let Some(mut record) = state.store.thumbnail(&namespace, &id).await? else {
        return Err(not_found(&id, namespace.environment));
    };
    let current = etag(&record.result.etag);
    if let Some(v) = version
        && current.trim_matches('"') != v
    {
        return Err(ApiError::not_found(
            Code::ThumbnailNotFound,
            format!(
                "thumbnail {:?} in {} is no longer version {v:?}: it was replaced",
                id.as_str(),
                namespace.environment
            ),
        ));
    }
    let mut response = if if_none_match(&headers, &current) {
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
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(match (version, anonymous) {
            // Replaced in place at the same URL: caches must revalidate (cheap: 304 on the ETag).
            (None, _) => "private, no-cache",
            // One version's bytes never change. Shared caches (a CDN) may keep them only
            // when no token was needed to fetch them; a bearer's answer stays private.
            (Some(_), true) => "public, max-age=31536000, immutable",
            (Some(_), false) => "private, max-age=31536000, immutable",
        }),
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
    uri: OriginalUri,
    id: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The same answer; the server sends no body for HEAD.
    get(state, uri, id, query, headers).await
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
    // Its `thumbnail.deleted` deliveries, if any, were written with the deletion.
    state.intake.webhooks().nudge();
    Ok(StatusCode::NO_CONTENT.into_response())
}
