//! thumbd-api: the HTTP API (README: The HTTP API), on axum. The only crate that knows HTTP.
//!
//! [`router`] builds the whole API over an [`AppState`] (the three backends, the
//! [`Auth`] policy and [`ApiOptions`]); [`serve`] runs it on a listener with a header-read
//! timeout and graceful shutdown. Handlers do cheap checks only — auth, `Content-Type`, a
//! body limit enforced while streaming, magic bytes against `accept_formats` and the image
//! header through `thumbcore::Limits::probe` — then store the original, record the job and
//! enqueue it; image work happens in the worker. Every failure answers the JSON error body with a stable code
//! ([`ApiError`]), including unknown routes, wrong methods and panics. [`openapi()`] describes
//! it all (served at `GET /openapi.json`), generated from the handlers' annotations.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use thumbd_api::{ApiOptions, AppState, Auth, Metrics, RateLimit, router};
//! use thumbd_jobs::{FsBlobStore, Intake, IntakeParts, JobEvents, SqliteDb, SqliteJobQueue,
//!     SqliteMetaStore};
//! use tower::ServiceExt as _;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let db = SqliteDb::in_memory().await.unwrap();
//! let queue = SqliteJobQueue::unlocked(db.clone(), Duration::from_secs(30));
//! let parts = IntakeParts {
//!     store: Arc::new(SqliteMetaStore::new(db)),
//!     webhook_queue: Arc::new(queue.lane(thumbd_jobs::WEBHOOK_LANE)),
//!     queue: Arc::new(queue),
//!     blobs: Arc::new(FsBlobStore::open(dir.path()).unwrap()),
//!     events: JobEvents::new(),
//!     local_worker: None,
//! };
//! let state = AppState {
//!     store: parts.store.clone(),
//!     queue: parts.queue.clone(),
//!     blobs: parts.blobs.clone(),
//!     auth: Arc::new(Auth::off()),
//!     options: ApiOptions::default(),
//!     rate_limit: Arc::new(RateLimit::off()),
//!     metrics: Arc::new(Metrics::default()),
//!     intake: Arc::new(Intake::new(parts)),
//!     readiness: Default::default(),
//! };
//! let response = router(state)
//!     .oneshot(Request::get("/v1/thumbnails/x?environment=production").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), StatusCode::NOT_FOUND); // {"error":{"code":"ThumbnailNotFound",…}}
//! # });
//! ```

mod auth;
mod error;
mod handlers;
mod metrics;
mod negotiate;
mod openapi;
mod rate_limit;
mod request;
mod server;
mod signing;
mod views;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, Request, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use thumbd_jobs::{BlobStore, Intake, JobQueue, MetaStore};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{Auth, Caller, Claims, PublicKeyAlgorithm, Scope, mint_hs256, mint_hs256_claims};
pub use error::{ApiError, ErrorDetail, describe_code, error_table, status_of};
pub use handlers::health::Readiness;
pub use metrics::Metrics;
pub use prometheus_client::registry::Registry;
pub use rate_limit::RateLimit;
pub use server::{ServeOptions, serve};
pub use signing::UrlSigner;
pub use views::{ResultView, StatusView, status_body, thumbnail_url};

/// Tunables of the API. `Default` is what `thumbd serve` uses.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Input limits checked synchronously (body size, pixels, minimum size).
    pub spec_limits: thumbcore::Limits,
    /// How long a create waits for its job before answering 202. Default 2 s.
    pub default_wait: Duration,
    /// The most a client may ask for with `Prefer: wait=N`. Default 10 s. A create from an
    /// upload ticket waits this long by default (it is synchronous).
    pub max_wait: Duration,
    /// How long an upload's ticket stays valid. Default 1 h.
    pub upload_ttl: Duration,
    /// How long a `/readyz` check is answered again before the backends are asked anew.
    /// Default 1 s.
    pub readiness_ttl: Duration,
    /// Signs the thumbnail URLs in results, and lets a GET with a valid signature in
    /// without a token (`url_signing_key`). Default none.
    pub url_signer: Option<UrlSigner>,
    /// Webhook URLs may point at loopback, private and link-local addresses
    /// (`allow_private_webhooks`). Default `false`.
    pub allow_private_webhooks: bool,
    /// The profiles a create may name, and the one it gets when it names none. Default:
    /// `default` = `330:png`.
    pub profiles: thumbcore::Profiles,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            spec_limits: thumbcore::Limits::default(),
            default_wait: Duration::from_secs(2),
            max_wait: Duration::from_secs(10),
            upload_ttl: Duration::from_secs(3600),
            readiness_ttl: Duration::from_secs(1),
            url_signer: None,
            allow_private_webhooks: false,
            profiles: thumbcore::Profiles::default(),
        }
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Jobs and thumbnails.
    pub store: Arc<dyn MetaStore>,
    /// Where jobs go.
    pub queue: Arc<dyn JobQueue>,
    /// Originals and thumbnails.
    pub blobs: Arc<dyn BlobStore>,
    /// Who may do what.
    pub auth: Arc<Auth>,
    /// Tunables.
    pub options: ApiOptions,
    /// Per-client request allowance (`THUMBD_RATE_LIMIT`).
    pub rate_limit: Arc<RateLimit>,
    /// What `/metrics` exports.
    pub metrics: Arc<Metrics>,
    /// Accepts jobs: creates are extracted here and handed to it.
    pub intake: Arc<Intake>,
    /// The last `/readyz` check, answered again while fresh.
    pub readiness: Arc<Readiness>,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let routes = v1_routes()
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::enforce,
        ))
        .merge(operations_routes())
        .routes(routes!(openapi::document));
    with_common_layers(routes, state)
}

/// Only `/healthz`, `/readyz` and `/metrics`: what a `thumbd worker` process serves.
pub fn health_router(state: AppState) -> Router {
    with_common_layers(operations_routes(), state)
}

/// The OpenAPI 3.1 description of what [`router`] serves (`GET /openapi.json`), built from
/// the same route lists, so the two cannot drift apart.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut v1 = v1_routes();
    openapi::rate_limited(v1.get_openapi_mut());
    let mut doc = OpenApiRouter::<AppState>::with_openapi(openapi::ApiDoc::openapi())
        .merge(v1)
        .merge(operations_routes())
        .routes(routes!(openapi::document))
        .into_openapi();
    openapi::finish(&mut doc);
    doc
}

/// The `/v1` routes. `routes!` registers each handler under the method and path of its
/// `#[utoipa::path]` and records that operation, so no route lacks a description.
fn v1_routes() -> OpenApiRouter<AppState> {
    use handlers::{contexts, listing, status, thumbnails, uploads, webhooks};
    OpenApiRouter::new()
        .routes(routes!(thumbnails::create::post, listing::thumbnails))
        .routes(routes!(listing::jobs))
        .routes(routes!(
            thumbnails::read::get,
            thumbnails::read::head,
            thumbnails::create::put,
            thumbnails::read::delete
        ))
        .routes(routes!(thumbnails::read::meta))
        .routes(routes!(status::get))
        .routes(routes!(uploads::post))
        .routes(routes!(uploads::get))
        .routes(routes!(contexts::get, contexts::put, contexts::delete))
        .routes(routes!(webhooks::list))
        .routes(routes!(webhooks::get, webhooks::put, webhooks::delete))
        .routes(routes!(webhooks::deliveries))
}

/// Liveness, readiness and metrics: served by every process, without a token or a rate limit.
fn operations_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::health::healthz))
        .routes(routes!(handlers::health::readyz))
        .routes(routes!(metrics::export))
}

/// Request metrics, JSON errors for unknown routes and methods, panic catching, request ids
/// and tracing.
fn with_common_layers(routes: OpenApiRouter<AppState>, state: AppState) -> Router {
    Router::from(routes)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("a handler panicked");
                ApiError::internal().into_response()
            },
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(access_log)
                // A 5xx is in the access line; its cause was logged where it happened.
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The span every event of a request is logged in: its method, route (the path template, or
/// `unmatched`), path, request id, and the tenant once the token is read (`Auth::authorize`).
/// Probes and scrapes get a `probe` span at debug.
fn request_span(req: &Request<axum::body::Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    if matches!(route, "/healthz" | "/readyz" | "/metrics") {
        return tracing::debug_span!("probe", method = %req.method(), route, request_id = %id);
    }
    tracing::info_span!(
        "request",
        method = %req.method(),
        route,
        path = %req.uri().path(),
        request_id = %id,
        tenant = tracing::field::Empty,
    )
}

/// The access log: one line per request answered, in the request's span; at info, except
/// probes and scrapes (`/healthz`, `/readyz`, `/metrics`: every few seconds, all alike) at
/// debug.
fn access_log(response: &Response, latency: std::time::Duration, span: &tracing::Span) {
    let status = response.status().as_u16();
    // Whole microseconds, shown as milliseconds: `12.345`, not `12.345000000000001`.
    let duration_ms = latency.as_micros() as f64 / 1000.0;
    // A disabled span (no metadata) is a probe's debug span, or logging is off below info.
    if span.metadata().is_none_or(|m| m.name() == "probe") {
        tracing::debug!(status, duration_ms, "answered");
    } else {
        tracing::info!(status, duration_ms, "answered");
    }
}

/// Unknown routes are outside the route layers: counted here, as `unmatched`.
async fn no_route(State(state): State<AppState>, method: Method, uri: Uri) -> Response {
    let response = ApiError::no_route(uri.path()).into_response();
    state
        .metrics
        .unmatched(method.as_str(), response.status().as_u16());
    response
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
    ApiError::method_not_allowed(method.as_str(), uri.path()).into_response()
}
