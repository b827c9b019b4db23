//! Wire types: the job status body (README: The HTTP API), served by the API and sent to
//! `replyTo` by workers ([`status_body`], which the binary hands to each worker), and the
//! URLs in it. They derive `utoipa::ToSchema`, so the API's OpenAPI
//! document (`GET /openapi.json`) is generated from these very fields and doc comments.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use std::collections::BTreeMap;

use thumbd_jobs::{
    Environment, JobRecord, JobResult, JobStatus, RenditionStatus, Tenant, ThumbnailId, Timestamp,
};

use crate::signing::{UrlSigner, unix_now};

/// Characters kept as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URL path of a thumbnail: `/v1/thumbnails/{id}?environment={env}`, id percent-encoded.
pub fn thumbnail_url(id: &ThumbnailId, environment: Environment) -> String {
    let segment = match id.as_str() {
        // Dot segments would be resolved away by clients (RFC 3986 §5.2.4): encode them.
        "." => "%2E".to_owned(),
        ".." => "%2E%2E".to_owned(),
        other => utf8_percent_encode(other, SEGMENT).to_string(),
    };
    format!("/v1/thumbnails/{segment}?environment={environment}")
}

/// The URL path of a job's status.
pub fn status_url(record: &JobRecord) -> String {
    format!("/v1/status/{}", record.id)
}

/// A job's status (ClassKit "Get Status"; README: The HTTP API).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// Job id.
    pub id: String,
    /// `queued`, `processing`, `succeeded` or `failed`.
    #[schema(value_type = JobStatus)]
    pub status: &'static str,
    /// The thumbnail the job creates or replaces.
    pub thumbnail_id: String,
    /// `development` or `production`.
    #[schema(value_type = Environment)]
    pub environment: &'static str,
    /// RFC 3339.
    pub created_at: Timestamp,
    /// RFC 3339, or null before a worker started it.
    pub started_at: Option<Timestamp>,
    /// RFC 3339, or null while unfinished.
    pub finished_at: Option<Timestamp>,
    /// Times a worker started it.
    pub attempts: u32,
    /// Set when succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ResultView>,
    /// Set when failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorView>,
}

/// The thumbnail a succeeded job made.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultView {
    /// Pixels.
    pub width: u32,
    /// Pixels.
    pub height: u32,
    /// Encoded size.
    pub bytes: u64,
    /// `image/png` unless configured otherwise.
    pub content_type: String,
    /// The `ETag` the thumbnail is served with.
    pub etag: String,
    /// Where to GET it.
    pub url: String,
    /// `true` when the input was animated (a GIF or WebP of several frames): the thumbnail
    /// shows the first frame. Absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub animated: bool,
    /// What to paint while it loads: a ThumbHash, a 4×3 BlurHash and the average colour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<thumbd_jobs::Placeholder>,
    /// Every rendition of the set (the one above among them), in the profile's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub renditions: Vec<RenditionView>,
    /// Per media type, the ready renditions as an HTML `srcset` (`URL 80w, URL 160w`),
    /// widths being the real widths.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub srcset: BTreeMap<String, String>,
}

/// One rendition of a set.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RenditionView {
    /// The box edge it fits in, as the profile names it.
    pub size: u32,
    /// Real width.
    pub width: u32,
    /// Real height.
    pub height: u32,
    /// `png`, `jpeg`, `webp` or `avif`.
    pub format: String,
    /// Its media type.
    pub content_type: String,
    /// Encoded size; absent until ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// The `ETag` it is served with; absent until ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Where to GET it (`size` and `format` in the query); 404 `RenditionNotFound` until
    /// it is ready.
    pub url: String,
    /// `pending` (AVIF, made after the job), `ready` or `failed`.
    pub status: RenditionStatus,
}

/// A thumbnail's set (`GET /v1/thumbnails/{id}/meta`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetaView {
    /// The thumbnail's id.
    pub thumbnail_id: String,
    /// `development` or `production`.
    #[schema(value_type = Environment)]
    pub environment: &'static str,
    /// The profile the set was made for (`default` for sets made before profiles).
    pub profile: String,
    /// The probed input: upright size, format, whether it was animated. Absent for sets
    /// made before it was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<thumbd_jobs::SourceInfo>,
    /// Every rendition, in the profile's order.
    pub renditions: Vec<RenditionView>,
    /// Per media type, the ready renditions as an HTML `srcset`.
    pub srcset: BTreeMap<String, String>,
    /// What to paint while a rendition loads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<thumbd_jobs::Placeholder>,
    /// RFC 3339: when the job that made this set was accepted.
    pub created_at: Timestamp,
    /// RFC 3339: when this set became current.
    pub updated_at: Timestamp,
}

/// Why a job failed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorView {
    /// Stable code.
    #[schema(value_type = String)]
    pub code: thumbd_codes::Code,
    /// Details.
    pub message: String,
}

impl StatusView {
    /// The status of `job`; its result's URL signed when the API signs URLs
    /// (`url_signing_key`).
    pub fn new(job: &JobRecord, signer: Option<&UrlSigner>) -> Self {
        StatusView {
            id: job.id.to_string(),
            status: job.status.as_str(),
            thumbnail_id: job.thumbnail_id.to_string(),
            environment: job.environment.as_str(),
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            attempts: job.attempts,
            result: job.result.as_ref().map(|r| {
                ResultView::new(r, &job.thumbnail_id, job.environment, &job.tenant, signer)
            }),
            error: job.error.as_ref().map(|e| ErrorView {
                code: e.code,
                message: e.message.clone(),
            }),
        }
    }
}

impl ResultView {
    /// The view of `result`, the current or a past thumbnail `id` of `tenant` in
    /// `environment`; its URL signed when `signer` is given.
    pub fn new(
        result: &JobResult,
        id: &ThumbnailId,
        environment: Environment,
        tenant: &Tenant,
        signer: Option<&UrlSigner>,
    ) -> Self {
        let sign = |url: String| match signer {
            Some(signer) => signer.sign(&url, tenant, unix_now()),
            None => url,
        };
        let url = thumbnail_url(id, environment);
        let renditions: Vec<RenditionView> = result
            .renditions
            .iter()
            .map(|r| RenditionView {
                size: r.size,
                width: r.width,
                height: r.height,
                format: r.format.clone(),
                content_type: r.content_type.clone(),
                bytes: (r.status == RenditionStatus::Ready).then_some(r.bytes),
                etag: (r.status == RenditionStatus::Ready).then(|| etag(&r.etag)),
                url: sign(format!("{url}&size={}&format={}", r.size, r.format)),
                status: r.status,
            })
            .collect();
        ResultView {
            width: result.width,
            height: result.height,
            bytes: result.bytes,
            content_type: result.content_type.clone(),
            etag: etag(&result.etag),
            url: sign(url),
            animated: result.animated,
            placeholder: result.placeholder.clone(),
            srcset: srcset(&renditions),
            renditions,
        }
    }
}

/// Per media type, the ready renditions as `URL WIDTHw` by width; of two with the same
/// real width (an image smaller than both boxes) the one listed first.
pub fn srcset(renditions: &[RenditionView]) -> BTreeMap<String, String> {
    let mut by_type: BTreeMap<String, Vec<&RenditionView>> = BTreeMap::new();
    for r in renditions
        .iter()
        .filter(|r| r.status == RenditionStatus::Ready)
    {
        let list = by_type.entry(r.content_type.clone()).or_default();
        if !list.iter().any(|o| o.width == r.width) {
            list.push(r);
        }
    }
    by_type
        .into_iter()
        .map(|(media, mut list)| {
            list.sort_by_key(|r| r.width);
            let set = list
                .iter()
                .map(|r| format!("{} {}w", r.url, r.width))
                .collect::<Vec<_>>()
                .join(", ");
            (media, set)
        })
        .collect()
}

/// The JSON a job's status is sent as, over HTTP and to a producer's `replyTo` queue.
pub fn status_body(record: &JobRecord) -> Vec<u8> {
    serde_json::to_vec(&StatusView::new(record, None)).expect("a status view serializes")
}

/// A strong entity tag from a content hash: the first 32 hex digits, quoted.
pub fn etag(sha256_hex: &str) -> String {
    format!("\"{}\"", sha256_hex.get(..32).unwrap_or(sha256_hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_the_id() {
        let id = ThumbnailId::parse("a/b c?d#é").unwrap();
        assert_eq!(
            thumbnail_url(&id, Environment::Production),
            "/v1/thumbnails/a%2Fb%20c%3Fd%23%C3%A9?environment=production"
        );
        for (id, segment) in [(".", "%2E"), ("..", "%2E%2E"), ("...", "...")] {
            assert_eq!(
                thumbnail_url(&ThumbnailId::parse(id).unwrap(), Environment::Development),
                format!("/v1/thumbnails/{segment}?environment=development"),
            );
        }
    }
}
