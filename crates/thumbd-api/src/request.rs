//! Reading requests: query parameters, `Content-Type`, `Prefer`, `Idempotency-Key`, the
//! caller's address, and bodies (bytes under a limit, JSON objects).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use thumbd_codes::Code;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use thumbcore::{ImageFormat, InputFormats};
use thumbd_jobs::{ContextId, Environment, IdempotencyKey, Namespace, ThumbnailId, UploadTicket};

use crate::auth::Caller;
use crate::error::ApiError;

/// The most a JSON request body may hold (`{"url"}`, `{"uploadTicket"}`, a context).
pub const MAX_JSON_BYTES: usize = 64 * 1024;

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

    /// The one value of parameter `name`, if given (given twice: an error).
    pub fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
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

    /// The `environment`, if given.
    pub fn optional_environment(&self) -> Result<Option<Environment>, ApiError> {
        self.one("environment")?
            .map(|v| {
                Environment::parse(v)
                    .map_err(|e| ApiError::invalid_query("environment", e.to_string()))
            })
            .transpose()
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

/// The namespace (the caller's tenant, the query's `environment`) and the path's id (parsed
/// by `id`) of a request on one resource, once the token is authorized for `scope` in that
/// environment. Errors in that order: query, id, then authorization.
pub fn authorized_target<T>(
    state: &crate::AppState,
    query: Option<&str>,
    headers: &HeaderMap,
    scope: crate::auth::Scope,
    id: impl FnOnce() -> Result<T, ApiError>,
) -> Result<(Namespace, T), ApiError> {
    let params = QueryParams::parse(query)?;
    let (namespace, id, _) = authorize_target(state, &params, headers, scope, id)?;
    Ok((namespace, id))
}

/// [`authorized_target`] on a query already parsed, with the [`Caller`] it let in.
pub fn authorize_target<T>(
    state: &crate::AppState,
    params: &QueryParams,
    headers: &HeaderMap,
    scope: crate::auth::Scope,
    id: impl FnOnce() -> Result<T, ApiError>,
) -> Result<(Namespace, T, Caller), ApiError> {
    let environment = params.environment()?;
    let id = id()?;
    let caller = state.auth.authorize(headers, scope, Some(environment))?;
    Ok((
        Namespace::new(caller.tenant.clone(), environment),
        id,
        caller,
    ))
}

/// Parses a contextId taken from the path.
pub fn path_context_id(raw: &str) -> Result<ContextId, ApiError> {
    ContextId::parse(raw).map_err(|e| ApiError::invalid_query("contextId", e.to_string()))
}

/// The peer's IP address, when the server knows it (requests through [`serve`](crate::serve)
/// do; a router driven directly, as in tests, may not).
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(peer_ip(
            parts.extensions.get::<ConnectInfo<SocketAddr>>(),
        )))
    }
}

fn peer_ip(info: Option<&ConnectInfo<SocketAddr>>) -> Option<IpAddr> {
    info.map(|ConnectInfo(addr)| addr.ip())
}

/// The address that stands for a caller: an IPv4 address, or an IPv6 address's /64 (one
/// site's worth: a host there can change its address at will).
pub fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from_bits(
                v6.to_bits() & !u128::from(u64::MAX),
            )),
        },
    }
}

/// Who a request comes from, for idempotency keys and rate limits: the token's subject,
/// else the peer's address, else `anonymous`.
pub fn client_id(caller: &Caller, peer: Peer) -> String {
    match (&caller.subject, peer.0) {
        (Some(subject), _) => format!("sub:{subject}"),
        (None, Some(ip)) => format!("ip:{}", network_of(ip)),
        (None, None) => "anonymous".to_owned(),
    }
}

/// The `Idempotency-Key` of a create, scoped to its client and namespace; `None` without the
/// header. 1–255 visible ASCII characters, else 422 `InvalidHeaderValue`.
pub fn idempotency_key(
    headers: &HeaderMap,
    client: String,
    namespace: &Namespace,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("").trim();
    if key.is_empty() || key.len() > ThumbnailId::MAX_BYTES {
        return Err(ApiError::invalid_thumbnail(
            Code::InvalidHeaderValue,
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
            Some("idempotency-key"),
        ));
    }
    Ok(Some(IdempotencyKey {
        client,
        tenant: namespace.tenant.clone(),
        environment: namespace.environment,
        key: key.to_owned(),
    }))
}

/// A create's JSON body: where the image comes from. Exactly one of `url` and
/// `uploadTicket`, nothing else.
// Parsed by `json_create` (for coded errors); the derive describes it in the OpenAPI
// document as serde's externally tagged form, which is this wire format.
#[derive(Debug, Clone, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = CreateSource)]
pub enum JsonSource {
    /// `{"url": "https://…"}`: the worker downloads it (absolute `http` or `https` with a host
    /// and no credentials, at most 2048 bytes; where it points is checked at connect time).
    #[schema(format = "uri", example = json!({"url": "https://example.com/logo.png"}))]
    Url(String),
    /// `{"uploadTicket": "…"}`: a stored upload (`POST /v1/uploads`), processed synchronously.
    #[schema(value_type = String, example = json!({"uploadTicket": "up_0123456789abcdef0123456789abcdef"}))]
    UploadTicket(UploadTicket),
}

/// The longest URL a source may have.
const MAX_URL_BYTES: usize = 2048;

/// Parses `{"url": …}` or `{"uploadTicket": …}` (exactly one of them, nothing else).
/// A URL must be absolute `http` or `https` with a host; a ticket that cannot exist is
/// 404 `UploadTicketNotFound`.
/// An optional `"profile": "NAME"` may stand beside the source (checked against the
/// configured profiles by the caller).
pub fn json_create(bytes: &[u8]) -> Result<(JsonSource, Option<String>), ApiError> {
    let mut object = json_object(bytes)?;
    let profile = match object.remove("profile") {
        None => None,
        Some(serde_json::Value::String(name)) => Some(name),
        Some(_) => {
            return Err(ApiError::invalid_body("`profile` must be a string").with_target("profile"));
        }
    };
    json_only_source(&object).map(|source| (source, profile))
}

fn json_only_source(
    object: &serde_json::Map<String, serde_json::Value>,
) -> Result<JsonSource, ApiError> {
    let mut keys = object.keys().map(String::as_str).collect::<Vec<_>>();
    keys.sort_unstable();
    let text = |name: &str| {
        object[name].as_str().ok_or_else(|| {
            ApiError::invalid_body(format!("`{name}` must be a string")).with_target(name)
        })
    };
    match keys.as_slice() {
        ["url"] => {
            let raw = text("url")?;
            check_source_url(raw)?;
            Ok(JsonSource::Url(raw.to_owned()))
        }
        ["uploadTicket"] => {
            let raw = text("uploadTicket")?;
            UploadTicket::parse(raw)
                .map(JsonSource::UploadTicket)
                .map_err(|_| ticket_not_found())
        }
        _ => Err(ApiError::invalid_body(
            "the JSON body must be {\"url\": \"https://…\"} or {\"uploadTicket\": \"…\"}",
        )),
    }
}

/// 404 `UploadTicketNotFound`.
pub fn ticket_not_found() -> ApiError {
    ApiError::not_found(
        Code::UploadTicketNotFound,
        "there is no such upload ticket, or it has expired",
    )
}

/// A source URL must parse, be `http`/`https` with a host and no credentials. Where it
/// points is the worker's check, at connect time.
fn check_source_url(raw: &str) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::invalid_body(format!("`url` {why}")).with_target("url");
    if raw.len() > MAX_URL_BYTES {
        return Err(bad("is longer than 2048 bytes"));
    }
    let url = url::Url::parse(raw).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be an http or https URL"));
    }
    if url.host().is_none() {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry credentials"));
    }
    Ok(())
}

/// Parses a JSON object; anything else is 400 `InvalidRequestBody` saying what is wrong.
pub fn json_object(bytes: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid_body("the JSON body must be an object")),
        Err(e) => Err(ApiError::invalid_body(format!(
            "the body is not valid JSON: {e}"
        ))),
    }
}

/// Requires `Content-Type: application/json` (parameters ignored): 415-style refusals are
/// answered as 422 `InvalidHeaderValue` like every other content-type error.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match body_kind(headers, InputFormats::DEFAULT) {
        Ok(BodyKind::Json) => Ok(()),
        Ok(_) => Err(ApiError::invalid_thumbnail(
            Code::InvalidHeaderValue,
            "this endpoint takes application/json",
            Some("content-type"),
        )),
        Err(e) => Err(e),
    }
}

/// The body kinds a create-or-replace accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// An image of an accepted format: `image/png`, `image/jpeg` (or the alias
    /// `image/jpg`), and `image/webp`, `image/gif` where `accept_formats` has them.
    Image(ImageFormat),
    /// `application/json` (`{"url"}` or `{"uploadTicket"}`).
    Json,
}

impl BodyKind {
    /// The canonical media type (what thumbcore checks the bytes against).
    pub fn media_type(self) -> &'static str {
        match self {
            BodyKind::Image(format) => format.content_type(),
            BodyKind::Json => "application/json",
        }
    }
}

/// Reads `Content-Type`: missing → `MissingRequiredHeader`, anything but an `accepted` image
/// type or JSON → `InvalidHeaderValue`. Parameters (`; charset=…`) and case are ignored.
pub fn body_kind(headers: &HeaderMap, accepted: InputFormats) -> Result<BodyKind, ApiError> {
    let types = format!(
        "{} or application/json",
        accepted
            .iter()
            .map(ImageFormat::content_type)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::invalid_thumbnail(
            Code::MissingRequiredHeader,
            format!("the Content-Type header is required ({types})"),
            Some("content-type"),
        ));
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(BodyKind::Json);
    }
    ImageFormat::from_content_type(essence, accepted)
        .map(BodyKind::Image)
        .map_err(|_| {
            ApiError::invalid_thumbnail(
                Code::InvalidHeaderValue,
                format!(
                    "Content-Type {:?} is not supported: use {types}",
                    value.to_str().unwrap_or("(not text)")
                ),
                Some("content-type"),
            )
        })
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

    #[test]
    fn callers_without_a_token_are_their_address_or_ipv6_network() {
        let id = |ip: &str| client_id(&Caller::default(), Peer(Some(ip.parse().unwrap())));
        assert_eq!(id("203.0.113.9"), "ip:203.0.113.9");
        assert_eq!(
            id("2001:db8:1:2:aaaa::1"),
            id("2001:db8:1:2:bbbb::2"),
            "one /64"
        );
        assert_ne!(id("2001:db8:1:2::1"), id("2001:db8:1:3::1"));
        assert_eq!(id("::ffff:203.0.113.9"), "ip:203.0.113.9");
        let caller = Caller {
            subject: Some("app".into()),
            ..Caller::default()
        };
        assert_eq!(client_id(&caller, Peer(None)), "sub:app");
        assert_eq!(client_id(&Caller::default(), Peer(None)), "anonymous");
    }

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
