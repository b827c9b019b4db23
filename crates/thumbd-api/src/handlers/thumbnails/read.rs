//! One stored thumbnail: `GET` (and `HEAD`) its bytes, `DELETE` it.

use thumbd_codes::Code;

use axum::Json;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use thumbd_jobs::{Environment, Namespace, ThumbnailId};

use super::{delete_set, header_value, target};
use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ErrorBody};
use crate::negotiate::{Ask, choose};
use crate::request::{QueryParams, authorize_target, path_thumbnail_id};
use crate::signing::unix_now;
use crate::views::{MetaView, ResultView, etag};

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
        ("size" = Option<u32>, Query, description = "Serve the smallest rendition at least this large (its box edge), else the largest"),
        ("format" = Option<String>, Query, description = "`png`, `jpeg`, `webp` or `avif`: serve that format (404 `RenditionNotFound` if the set has none ready); without it the format is negotiated from `Accept` (AVIF, then WebP, then the profile's main format) and the answer says `Vary: Accept`"),
        ("Accept" = Option<String>, Header, nullable = false, description = "Media types the client takes, with q-values; chooses among the ready formats of the size when `format` is absent"),
        ("v" = Option<String>, Query, description = "A version: the ETag without its quotes. Served only while it is current (else 404), with `Cache-Control: …, max-age=31536000, immutable` (`public` when fetched without a token)"),
        ("tenant" = Option<String>, Query, description = "In a signed URL: the tenant it was signed for (absent: `default`)"),
        ("expires" = Option<u64>, Query, description = "In a signed URL: when it stops working (unix seconds)"),
        ("sig" = Option<String>, Query, description = "In a signed URL, last: base64url HMAC-SHA256 of the path and the query before it; replaces the token"),
        ("If-None-Match" = Option<String>, Header, nullable = false, description = "ETags the client holds (or `*`): 304 when one matches"),
    ),
    responses(
        (status = 200, description = "One rendition of the thumbnail (without `size`, `format` or a choice of formats: the profile's main one, PNG by default)",
            content(("image/png"), ("image/jpeg"), ("image/webp")),
            headers(
                ("ETag" = String, description = "A strong tag from the content's hash"),
                ("Vary" = String, description = "`Accept`, when the format was negotiated"),
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
        (status = 404, description = "`ThumbnailNotFound`; `RenditionNotFound`: no ready rendition in `format`", body = ErrorBody),
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
    let ask = Ask {
        size: params
            .one("size")?
            .map(|s| {
                s.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(|| {
                    ApiError::invalid_query(
                        "size",
                        "`size` must be a whole number of pixels, at least 1",
                    )
                })
            })
            .transpose()?,
        format: params
            .one("format")?
            .map(|f| match f {
                "png" | "jpeg" | "webp" | "avif" => Ok(f),
                _ => Err(ApiError::invalid_query(
                    "format",
                    "`format` must be png, jpeg, webp or avif",
                )),
            })
            .transpose()?,
        accept: headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()),
    };
    let Some(mut record) = state.store.thumbnail(&namespace, &id).await? else {
        return Err(not_found(&id, namespace.environment));
    };
    let mut choice = choose(&record.result, ask).ok_or_else(|| no_rendition(&ask))?;
    let current = etag(&choice.rendition.etag);
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
            if let Some(bytes) = state.blobs.get(&choice.rendition.blob_key).await? {
                break bytes;
            }
            let Some(now) = state.store.thumbnail(&namespace, &id).await? else {
                return Err(not_found(&id, namespace.environment));
            };
            tries += 1;
            if now.job_id == record.job_id || tries == 3 {
                tracing::error!(blob = %choice.rendition.blob_key, "a thumbnail's blob is missing");
                return Err(ApiError::internal());
            }
            record = now;
            choice = choose(&record.result, ask).ok_or_else(|| no_rendition(&ask))?;
        };
        state.metrics.served(bytes.len());
        let mut r = Bytes::into_response(bytes);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&choice.rendition.content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
        r
    };
    let tag = etag(&choice.rendition.etag);
    let h = response.headers_mut();
    h.insert(header::ETAG, header_value(&tag));
    if choice.negotiated {
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
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
        ("size" = Option<u32>, Query, description = "As for GET: the smallest rendition at least this large, else the largest"),
        ("format" = Option<String>, Query, description = "As for GET: `png`, `jpeg`, `webp` or `avif`; without it, negotiated from `Accept`"),
        ("Accept" = Option<String>, Header, nullable = false, description = "As for GET"),
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

/// 404 `RenditionNotFound`: the set has no ready rendition in the format asked for.
fn no_rendition(ask: &Ask<'_>) -> ApiError {
    ApiError::not_found(
        Code::RenditionNotFound,
        format!(
            "the thumbnail has no ready {} rendition",
            ask.format.unwrap_or("such")
        ),
    )
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
    delete_set(&state, &deleted.result).await;
    // Its `thumbnail.deleted` deliveries, if any, were written with the deletion.
    state.intake.webhooks().nudge();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A thumbnail's set, described.
///
/// The profile, the probed source, every rendition with its status and URL, the `srcset`
/// strings and the placeholder, without the bytes.
#[utoipa::path(
    get,
    path = "/v1/thumbnails/{id}/meta",
    operation_id = "getThumbnailMeta",
    tag = "thumbnails",
    security(("bearer" = ["thumbnails:read"])),
    params(
        ("id" = String, Path, description = "The thumbnailId: 1–255 bytes of UTF-8 once percent-decoded, any characters"),
        ("environment" = Environment, Query, description = "The namespace"),
    ),
    responses(
        (status = 200, description = "The set", body = MetaView),
        (status = 400, description = "`InvalidQueryParameter` (target: `environment` or `thumbnailId`)", body = ErrorBody),
        (status = 404, description = "`ThumbnailNotFound`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn meta(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<MetaView>, ApiError> {
    let (namespace, id) = target(&state, &id, query.as_deref(), &headers, Scope::Read)?;
    let Some(record) = state.store.thumbnail(&namespace, &id).await? else {
        return Err(not_found(&id, namespace.environment));
    };
    let view = ResultView::new(
        &record.result,
        &id,
        namespace.environment,
        &namespace.tenant,
        state.options.url_signer.as_ref(),
    );
    Ok(Json(MetaView {
        thumbnail_id: id.to_string(),
        environment: namespace.environment.as_str(),
        profile: record
            .result
            .profile
            .clone()
            .unwrap_or_else(|| thumbcore::Profiles::DEFAULT.to_owned()),
        source: record.result.source.clone(),
        renditions: view.renditions,
        srcset: view.srcset,
        placeholder: record.result.placeholder.clone(),
        created_at: record.job_created_at,
        updated_at: record.updated_at,
    }))
}
