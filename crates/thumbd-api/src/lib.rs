//! thumbd-api: the HTTP API of SPEC §2, on axum. The only crate that knows HTTP.
//!
//! [`router`] builds the whole API over an [`AppState`] (the three backends, the
//! [`Auth`] policy and [`ApiOptions`]); [`serve`] runs it on a listener with a header-read
//! timeout and graceful shutdown. Handlers do cheap checks only — auth, `Content-Type`, a
//! body limit enforced while streaming, magic bytes and the image header through
//! `thumbcore::probe` — then store the original, record the job and enqueue it; image work
//! happens in the worker. Every failure answers the JSON error body of SPEC §3
//! ([`ApiError`]), including unknown routes, wrong methods and panics.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use thumbd_api::{ApiOptions, AppState, Auth, router};
//! use thumbd_jobs::{FsBlobStore, JobEvents, SqliteDb, SqliteJobQueue, SqliteMetaStore};
//! use tower::ServiceExt as _;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let db = SqliteDb::in_memory().await.unwrap();
//! let state = AppState {
//!     store: Arc::new(SqliteMetaStore::new(db.clone())),
//!     queue: Arc::new(SqliteJobQueue::unlocked(db, Duration::from_secs(30))),
//!     blobs: Arc::new(FsBlobStore::open(dir.path()).unwrap()),
//!     events: JobEvents::new(),
//!     auth: Arc::new(Auth::off()),
//!     options: ApiOptions::default(),
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
mod request;
mod server;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, Request, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use thumbd_jobs::{BlobStore, JobEvents, JobQueue, MetaStore};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use auth::{Auth, Caller, Claims, PublicKeyAlgorithm, Scope, mint_hs256};
pub use error::{ApiError, ErrorDetail};
pub use server::{ServeOptions, serve};
pub use thumbd_jobs::views::{ResultView, StatusView, thumbnail_url};

/// Tunables of the API. `Default` is what `thumbd serve` uses.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Input limits checked synchronously (body size, pixels, minimum size).
    pub spec_limits: thumbcore::Limits,
    /// How long a create waits for its job before answering 202. Default 2 s.
    pub default_wait: Duration,
    /// The most a client may ask for with `Prefer: wait=N`. Default 10 s.
    pub max_wait: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            spec_limits: thumbcore::Limits::default(),
            default_wait: Duration::from_secs(2),
            max_wait: Duration::from_secs(10),
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
    /// Finished-job news from workers in this process.
    pub events: JobEvents,
    /// Who may do what.
    pub auth: Arc<Auth>,
    /// Tunables.
    pub options: ApiOptions,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/v1/thumbnails", post(handlers::thumbnails::post))
        .route(
            "/v1/thumbnails/{id}",
            get(handlers::thumbnails::get)
                .put(handlers::thumbnails::put)
                .delete(handlers::thumbnails::delete),
        )
        .route("/v1/status/{job_id}", get(handlers::status::get));
    with_common_layers(routes, state)
}

/// Only `/healthz` and `/readyz`: what a `thumbd worker` process serves for its probes.
pub fn health_router(state: AppState) -> Router {
    with_common_layers(Router::new(), state)
}

/// Health routes, JSON errors for unknown routes and methods, panic catching, request ids
/// and tracing.
fn with_common_layers(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .route("/healthz", get(handlers::health::healthz))
        .route("/readyz", get(handlers::health::readyz))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            tracing::error!("a handler panicked");
            ApiError::internal().into_response()
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

async fn no_route(uri: Uri) -> Response {
    ApiError::no_route(uri.path()).into_response()
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
    ApiError::method_not_allowed(method.as_str(), uri.path()).into_response()
}
