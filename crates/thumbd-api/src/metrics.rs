//! `/metrics`: Prometheus/OpenMetrics text, every name prefixed `thumbd_`.
//!
//! [`Metrics`] owns the process's registry: the worker registers its job metrics into the
//! same [`Registry`] before it is handed over (see `thumbd_worker::WorkerMetrics`), and the
//! API adds its own here: requests by route, method and status, their latency, bytes in and
//! out, jobs accepted by source, the queue's depth and the pending webhook deliveries (both
//! read at each scrape) and `thumbd_build_info{version}`. Beside them, unprefixed, the standard `process_*` metrics
//! ([`process`]). A scraper gets OpenMetrics text unless it asks for Prometheus' text format
//! ([`format`]).

mod format;
mod process;

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::AppState;
use crate::error::ApiError;

/// Latency buckets, seconds: 1 ms to 30 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

/// The API's metrics and the registry they are exported from.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `process_*`, without the `thumbd_` prefix.
    process: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    received: Counter,
    served: Counter,
    accepted: Family<SourceLabels, Counter>,
    queue: Family<StateLabels, Gauge>,
    webhooks_pending: Gauge,
}

impl Metrics {
    /// Registers the API's metrics into `registry` (which may already hold others, e.g. the
    /// worker's) and keeps it for `/metrics`.
    pub fn new(mut registry: Registry) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(LATENCY_BUCKETS)) as fn() -> Histogram,
        );
        let received = Counter::default();
        let served = Counter::default();
        let accepted = Family::<SourceLabels, Counter>::default();
        let queue = Family::<StateLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (a create includes its wait for the job)",
            latency.clone(),
        );
        registry.register(
            "received_bytes",
            "Image bytes accepted in creates and uploads",
            received.clone(),
        );
        registry.register(
            "served_bytes",
            "Thumbnail bytes served by GET",
            served.clone(),
        );
        registry.register(
            "jobs_accepted",
            "Jobs accepted by the API, by source (image, upload, url)",
            accepted.clone(),
        );
        registry.register(
            "queue_messages",
            "Messages in the job queue by state (ready, leased, delayed, dead), read at scrape time",
            queue.clone(),
        );
        let webhooks_pending = Gauge::default();
        registry.register(
            "webhook_deliveries_pending",
            "Webhook deliveries not yet delivered nor given up, across namespaces, read at scrape time",
            webhooks_pending.clone(),
        );
        let build = Family::<VersionLabels, Gauge>::default();
        build
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the version of thumbd this process runs is its label",
            build,
        );
        let mut process = Registry::default();
        process.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            registry,
            process,
            requests,
            latency,
            received,
            served,
            accepted,
            queue,
            webhooks_pending,
        }
    }

    /// Counts image bytes a request brought in.
    pub fn received(&self, bytes: usize) {
        self.received.inc_by(bytes as u64);
    }

    /// Counts thumbnail bytes sent.
    pub fn served(&self, bytes: usize) {
        self.served.inc_by(bytes as u64);
    }

    /// Counts a job accepted from `source` (`image`, `upload`, `url`).
    pub fn accepted(&self, source: &'static str) {
        self.accepted.get_or_create(&SourceLabels { source }).inc();
    }

    /// Counts a request that matched no route (answered by the fallback).
    pub fn unmatched(&self, method: &str, status: u16) {
        self.count("unmatched", method, status);
    }

    fn count(&self, route: &str, method: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method_label(method).to_owned(),
                status,
            })
            .inc();
    }

    fn record(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.count(route, method, status);
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                method: method_label(method).to_owned(),
            })
            .observe(seconds);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(Registry::with_prefix("thumbd"))
    }
}

/// The `method` label: the standard methods as they are, anything else `OTHER` (clients
/// may send any token as a method; each must not become a series of its own).
fn method_label(method: &str) -> &str {
    match method {
        "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS" | "TRACE" | "CONNECT" => {
            method
        }
        _ => "OTHER",
    }
}

/// Middleware (as a route layer, so the matched route is known): counts and times every
/// answered request. Unknown routes are counted under `unmatched`.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    state.metrics.record(
        &route,
        &method,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// Prometheus metrics.
///
/// OpenMetrics text, or Prometheus' text format 0.0.4 when `Accept` prefers `text/plain`.
/// thumbd's own names start with `thumbd_`; the standard `process_*` metrics are beside them.
/// No token needed, not rate limited.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The process's metrics", body = String, content(
            (String = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
            (String = "text/plain; version=0.0.4; charset=utf-8"),
        )),
    )
)]
pub async fn export(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match state.queue.depth().await {
        Ok(depth) => {
            for (name, value) in [
                ("ready", depth.ready),
                ("leased", depth.leased),
                ("delayed", depth.delayed),
                ("dead", depth.dead),
            ] {
                state
                    .metrics
                    .queue
                    .get_or_create(&StateLabels { state: name })
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the queue depth for /metrics"),
    }
    match state.store.pending_deliveries().await {
        Ok(n) => {
            state
                .metrics
                .webhooks_pending
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot count pending webhook deliveries for /metrics")
        }
    }
    let format = format::Format::negotiate(&headers);
    let mut text = String::new();
    let encoded =
        prometheus_client::encoding::text::encode_registry(&mut text, &state.metrics.registry)
            .and_then(|()| {
                prometheus_client::encoding::text::encode_registry(
                    &mut text,
                    &state.metrics.process,
                )
            })
            .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut text));
    if let Err(e) = encoded {
        tracing::error!(error = %e, "cannot encode metrics");
        return ApiError::internal().into_response();
    }
    if format == format::Format::Text {
        text = format::openmetrics_to_text(&text);
    }
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}
