//! Reading requests: query parameters, `Content-Type`, `Prefer`, and bodies under a limit.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use thumbd_jobs::{Environment, ThumbnailId};

use crate::error::ApiError;

/// The query string, decoded once; every parameter error names its parameter.
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Parses a raw query string (`None`: no query).
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let raw = raw.unwrap_or("");
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
            .map(QueryParams)
            .map_err(|e| {
                ApiError::invalid_query("query", format!("the query string is malformed: {e}"))
            })
    }

    fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self
            .0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::invalid_query(
                name,
                format!("`{name}` is given more than once"),
            ));
        }
        Ok(first)
    }

    /// The required `environment`.
    pub fn environment(&self) -> Result<Environment, ApiError> {
        let value = self.one("environment")?.ok_or_else(|| {
            ApiError::invalid_query(
                "environment",
                "the `environment` query parameter is required (development or production)",
            )
        })?;
        Environment::parse(value).map_err(|e| ApiError::invalid_query("environment", e.to_string()))
    }

    /// The required `thumbnailId` (ClassKit's POST form).
    pub fn thumbnail_id(&self) -> Result<ThumbnailId, ApiError> {
        let value = self.one("thumbnailId")?.ok_or_else(|| {
            ApiError::invalid_query(
                "thumbnailId",
                "the `thumbnailId` query parameter is required",
            )
        })?;
        ThumbnailId::parse(value).map_err(|e| ApiError::invalid_query("thumbnailId", e.to_string()))
    }
}

/// Parses a thumbnailId taken from the path (already percent-decoded by the router).
pub fn path_thumbnail_id(raw: &str) -> Result<ThumbnailId, ApiError> {
    ThumbnailId::parse(raw).map_err(|e| ApiError::invalid_query("thumbnailId", e.to_string()))
}

/// The body kinds a create-or-replace accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `image/png`.
    Png,
    /// `image/jpeg` (or the alias `image/jpg`).
    Jpeg,
    /// `application/json` (`{"url"}` or `{"uploadTicket"}`).
    Json,
}

impl BodyKind {
    /// The canonical media type (what thumbcore checks the bytes against).
    pub fn media_type(self) -> &'static str {
        match self {
            BodyKind::Png => "image/png",
            BodyKind::Jpeg => "image/jpeg",
            BodyKind::Json => "application/json",
        }
    }
}

/// Reads `Content-Type`: missing → `MissingRequiredHeader`, anything but PNG, JPEG or JSON →
/// `InvalidHeaderValue`. Parameters (`; charset=…`) and case are ignored.
pub fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::invalid_thumbnail(
            "MissingRequiredHeader",
            "the Content-Type header is required (image/png, image/jpeg or application/json)",
            Some("content-type"),
        ));
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "image/png" => Ok(BodyKind::Png),
        "image/jpeg" | "image/jpg" => Ok(BodyKind::Jpeg),
        "application/json" => Ok(BodyKind::Json),
        _ => Err(ApiError::invalid_thumbnail(
            "InvalidHeaderValue",
            format!(
                "Content-Type {:?} is not supported: use image/png, image/jpeg or application/json",
                value.to_str().unwrap_or("(not text)")
            ),
            Some("content-type"),
        )),
    }
}

/// Reads the whole body, refusing with 413 as soon as it is known to exceed `limit`: from
/// `Content-Length` before reading anything, else while streaming (never buffering more
/// than `limit` bytes).
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let capacity = declared.map_or(64 * 1024, |n| usize::try_from(n).unwrap_or(limit));
    let mut buf = BytesMut::with_capacity(capacity.min(limit));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::invalid_body(format!("cannot read the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(ApiError::too_large(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// What the client asked for with `Prefer` (RFC 7240): `respond-async`, or `wait=N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preference {
    /// How long to wait for the job before answering 202.
    pub wait: Duration,
    /// What to echo in `Preference-Applied`, if anything was applied.
    pub applied: Option<&'static str>,
}

/// Reads `Prefer`; unknown or malformed preferences are ignored, as RFC 7240 says.
pub fn preference(headers: &HeaderMap, default: Duration, max: Duration) -> Preference {
    let mut pref = Preference {
        wait: default.min(max),
        applied: None,
    };
    for value in headers.get_all("prefer") {
        for token in value.to_str().unwrap_or("").split([',', ';']) {
            let token = token.trim();
            if token.eq_ignore_ascii_case("respond-async") {
                return Preference {
                    wait: Duration::ZERO,
                    applied: Some("respond-async"),
                };
            }
            if let Some((k, v)) = token.split_once('=')
                && k.trim().eq_ignore_ascii_case("wait")
                && let Ok(secs) = v.trim().trim_matches('"').parse::<u64>()
            {
                pref.wait = Duration::from_secs(secs).min(max);
                pref.applied = Some("wait");
            }
        }
    }
    pref
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn prefer(v: &str) -> Preference {
        let mut h = HeaderMap::new();
        h.insert("prefer", HeaderValue::from_str(v).unwrap());
        preference(&h, Duration::from_secs(2), Duration::from_secs(10))
    }

    #[test]
    fn prefer_header() {
        assert_eq!(
            preference(
                &HeaderMap::new(),
                Duration::from_secs(2),
                Duration::from_secs(10)
            )
            .wait,
            Duration::from_secs(2)
        );
        assert_eq!(prefer("respond-async").wait, Duration::ZERO);
        assert_eq!(prefer("wait=5").wait, Duration::from_secs(5));
        assert_eq!(prefer("wait=500").wait, Duration::from_secs(10), "capped");
        assert_eq!(prefer("handling=lenient, wait=0").wait, Duration::ZERO);
        assert_eq!(
            prefer("wait=soon").wait,
            Duration::from_secs(2),
            "malformed is ignored"
        );
        assert_eq!(
            prefer("wait=1, respond-async").applied,
            Some("respond-async")
        );
    }

    #[test]
    fn query_params() {
        let q = QueryParams::parse(Some("thumbnailId=a%2Fb%20c&environment=production")).unwrap();
        assert_eq!(q.thumbnail_id().unwrap().as_str(), "a/b c");
        assert_eq!(q.environment().unwrap(), Environment::Production);
        let q = QueryParams::parse(Some("environment=staging")).unwrap();
        assert_eq!(q.environment().unwrap_err().code(), "InvalidQueryParameter");
        let q = QueryParams::parse(Some("environment=production&environment=development")).unwrap();
        assert!(q.environment().is_err());
        assert!(QueryParams::parse(None).unwrap().thumbnail_id().is_err());
    }
}
