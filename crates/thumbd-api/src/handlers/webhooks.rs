//! `/v1/webhooks`: endpoints a namespace registers to hear of finished jobs and deleted
//! thumbnails, and what became of the deliveries to them (README, "Webhooks"). Scope
//! `webhooks:manage`.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use thumbd_codes::Code;
use thumbd_jobs::{
    AttemptRecord, Environment, EventType, Namespace, NewWebhook, Timestamp, WebhookId, WebhookPut,
    WebhookRecord, WebhookSecret,
};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ErrorBody};
use crate::request::{
    MAX_JSON_BYTES, QueryParams, authorize_target, authorized_target, read_body, require_json,
};

/// The body of `PUT /v1/webhooks/{webhookId}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookRequest {
    /// Where events are posted: http or https, no credentials, a public address (unless
    /// `allow_private_webhooks`).
    pub url: String,
    /// What to send: at least one of `job.succeeded`, `job.failed`, `rendition.ready`,
    /// `thumbnail.deleted`.
    pub events: Vec<EventType>,
    /// The signing secret, `whsec_` and the base64 of 24–64 bytes; absent: a new endpoint
    /// gets a generated one, a replaced endpoint keeps its own.
    #[serde(default)]
    pub secret: Option<String>,
}

/// An endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    /// The client's name for it.
    pub webhook_id: String,
    /// The namespace.
    pub environment: Environment,
    /// Where events are posted.
    pub url: String,
    /// What it is sent.
    pub events: Vec<EventType>,
    /// The signing secret: only in the answer that created the endpoint (or set a new one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// When it was registered first.
    pub created_at: Timestamp,
    /// When it was last registered.
    pub updated_at: Timestamp,
    /// When it answered `410 Gone` and was disabled; a PUT enables it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<Timestamp>,
}

/// The namespace's endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// By id.
    pub items: Vec<WebhookView>,
}

/// One attempt at delivering an event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// The event's id: the `webhook-id` header, the same on every attempt.
    pub event_id: String,
    /// The event's type.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it was made.
    pub at: Timestamp,
    /// The endpoint's HTTP status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why the attempt did not deliver (a status other than 2xx, a refused address, a
    /// timeout…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the attempt took.
    pub duration_ms: u64,
    /// When the next attempt is due; absent when this one delivered or was the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<Timestamp>,
}

/// An endpoint's recent attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptList {
    /// Newest first.
    pub items: Vec<AttemptView>,
}

/// Attempts listed unless `limit` says otherwise, and the most.
const DEFAULT_ATTEMPTS: u32 = 50;
const MAX_ATTEMPTS: u32 = 1000;

fn target(
    state: &AppState,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<(Namespace, WebhookId), ApiError> {
    authorized_target(state, query, headers, Scope::Webhooks, || parse_id(id))
}

fn parse_id(id: &str) -> Result<WebhookId, ApiError> {
    WebhookId::parse(id).map_err(|e| ApiError::invalid_query("webhookId", e.to_string()))
}

/// Create or replace a webhook endpoint.
///
/// 201 with the endpoint and its `secret` (shown this once) when created; 200 when replaced
/// (a replacement without `secret` keeps the endpoint's own, and enables it again if it was
/// disabled).
#[utoipa::path(
    put,
    path = "/v1/webhooks/{webhookId}",
    operation_id = "putWebhook",
    tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])),
    params(
        ("webhookId" = String, Path, description = "The endpoint's name: 1–64 characters of A–Z, a–z, 0–9, `.`, `_`, `-`"),
        ("environment" = Environment, Query, description = "The namespace"),
    ),
    request_body(content = WebhookRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced", body = WebhookView),
        (status = 201, description = "Created; `secret` is in this answer only", body = WebhookView),
        (status = 400, description = "`InvalidQueryParameter` (target: `environment` or `webhookId`), `InvalidRequestBody` (target: the field), or `WebhookUrlNotAllowed`", body = ErrorBody),
        (status = 401, description = "`HeaderNotFound` or `InvalidToken`", body = ErrorBody),
        (status = 403, description = "`InsufficientPermissions`: the token lacks `webhooks:manage`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (namespace, id) = target(&state, &id, query.as_deref(), &headers)?;
    require_json(&headers)?;
    let bytes = read_body(&headers, body, MAX_JSON_BYTES).await?;
    let request: WebhookRequest =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid_body(e.to_string()))?;
    if request.events.is_empty() {
        return Err(
            ApiError::invalid_body("`events` must name at least one event").with_target("events"),
        );
    }
    let mut events = Vec::with_capacity(request.events.len());
    for e in request.events {
        if !events.contains(&e) {
            events.push(e);
        }
    }
    let secret = request
        .secret
        .as_deref()
        .map(WebhookSecret::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_body(e.to_string()).with_target("secret"))?;
    let fetch = thumbd_fetch::FetchOptions {
        allow_private: state.options.allow_private_webhooks,
        ..thumbd_fetch::FetchOptions::default()
    };
    if request.url.len() > 2048 {
        return Err(ApiError::invalid_body("`url` is longer than 2048 bytes").with_target("url"));
    }
    if let Err(e) = thumbd_fetch::check_destination(&request.url, &fetch).await {
        return Err(ApiError::new(
            Code::WebhookUrlNotAllowed,
            format!("the webhook URL is not allowed: {}", e.endpoint_message()),
        ));
    }
    let secret_given = secret.is_some();
    let put = state
        .store
        .put_webhook(&NewWebhook {
            namespace,
            id,
            url: request.url,
            events,
            secret,
            now: Timestamp::now(),
        })
        .await?;
    Ok(match put {
        WebhookPut::Created(record) => {
            tracing::info!(webhook_id = %record.id, namespace = %record.namespace, "webhook endpoint created");
            (StatusCode::CREATED, axum::Json(view(&record, true))).into_response()
        }
        WebhookPut::Replaced(record) => {
            (StatusCode::OK, axum::Json(view(&record, secret_given))).into_response()
        }
    })
}

/// Get a webhook endpoint (without its secret).
#[utoipa::path(
    get,
    path = "/v1/webhooks/{webhookId}",
    operation_id = "getWebhook",
    tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])),
    params(
        ("webhookId" = String, Path, description = "The endpoint's name"),
        ("environment" = Environment, Query, description = "The namespace"),
    ),
    responses(
        (status = 200, description = "The endpoint", body = WebhookView),
        (status = 400, description = "`InvalidQueryParameter`", body = ErrorBody),
        (status = 401, description = "`HeaderNotFound` or `InvalidToken`", body = ErrorBody),
        (status = 403, description = "`InsufficientPermissions`", body = ErrorBody),
        (status = 404, description = "`WebhookNotFound`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<axum::Json<WebhookView>, ApiError> {
    let (namespace, id) = target(&state, &id, query.as_deref(), &headers)?;
    let record = state
        .store
        .webhook(&namespace, &id)
        .await?
        .ok_or_else(|| not_found(&id, namespace.environment))?;
    Ok(axum::Json(view(&record, false)))
}

/// Delete a webhook endpoint, with its pending deliveries and their history.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{webhookId}",
    operation_id = "deleteWebhook",
    tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])),
    params(
        ("webhookId" = String, Path, description = "The endpoint's name"),
        ("environment" = Environment, Query, description = "The namespace"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`InvalidQueryParameter`", body = ErrorBody),
        (status = 401, description = "`HeaderNotFound` or `InvalidToken`", body = ErrorBody),
        (status = 403, description = "`InsufficientPermissions`", body = ErrorBody),
        (status = 404, description = "`WebhookNotFound`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let (namespace, id) = target(&state, &id, query.as_deref(), &headers)?;
    if state.store.delete_webhook(&namespace, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id, namespace.environment))
    }
}

/// List the namespace's webhook endpoints (without secrets).
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    operation_id = "listWebhooks",
    tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])),
    params(("environment" = Environment, Query, description = "The namespace")),
    responses(
        (status = 200, description = "The endpoints, by id", body = WebhookList),
        (status = 400, description = "`InvalidQueryParameter`", body = ErrorBody),
        (status = 401, description = "`HeaderNotFound` or `InvalidToken`", body = ErrorBody),
        (status = 403, description = "`InsufficientPermissions`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<axum::Json<WebhookList>, ApiError> {
    let (namespace, ()) =
        authorized_target(&state, query.as_deref(), &headers, Scope::Webhooks, || {
            Ok(())
        })?;
    let records = state.store.list_webhooks(&namespace).await?;
    Ok(axum::Json(WebhookList {
        items: records.iter().map(|r| view(r, false)).collect(),
    }))
}

/// The latest delivery attempts to an endpoint.
///
/// Newest first: each attempt's event, HTTP status or error, duration, and when the next
/// attempt is due. Kept as long as job records (`job_retention_hours`).
#[utoipa::path(
    get,
    path = "/v1/webhooks/{webhookId}/deliveries",
    operation_id = "listWebhookDeliveries",
    tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])),
    params(
        ("webhookId" = String, Path, description = "The endpoint's name"),
        ("environment" = Environment, Query, description = "The namespace"),
        ("limit" = Option<u32>, Query, description = "Attempts listed, 1–1000 (default 50)"),
    ),
    responses(
        (status = 200, description = "The attempts, newest first", body = AttemptList),
        (status = 400, description = "`InvalidQueryParameter`", body = ErrorBody),
        (status = 401, description = "`HeaderNotFound` or `InvalidToken`", body = ErrorBody),
        (status = 403, description = "`InsufficientPermissions`", body = ErrorBody),
        (status = 404, description = "`WebhookNotFound`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<axum::Json<AttemptList>, ApiError> {
    let params = QueryParams::parse(query.as_deref())?;
    let (namespace, id, _) =
        authorize_target(&state, &params, &headers, Scope::Webhooks, || parse_id(&id))?;
    let limit = match params.one("limit")? {
        None => DEFAULT_ATTEMPTS,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_ATTEMPTS).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_query(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_ATTEMPTS}"),
                )
            })?,
    };
    if state.store.webhook(&namespace, &id).await?.is_none() {
        return Err(not_found(&id, namespace.environment));
    }
    let attempts = state.store.list_attempts(&namespace, &id, limit).await?;
    Ok(axum::Json(AttemptList {
        items: attempts.into_iter().map(attempt_view).collect(),
    }))
}

fn view(record: &WebhookRecord, with_secret: bool) -> WebhookView {
    WebhookView {
        webhook_id: record.id.to_string(),
        environment: record.namespace.environment,
        url: record.url.clone(),
        events: record.events.clone(),
        secret: with_secret.then(|| record.secret.expose().to_owned()),
        created_at: record.created_at,
        updated_at: record.updated_at,
        disabled_at: record.disabled_at,
    }
}

fn attempt_view(a: AttemptRecord) -> AttemptView {
    AttemptView {
        event_id: a.event_id,
        kind: a.kind,
        attempt: a.attempt,
        at: a.at,
        status: a.status,
        error: a.error,
        duration_ms: a.duration_ms,
        next_retry_at: a.next_retry_at,
    }
}

fn not_found(id: &WebhookId, environment: Environment) -> ApiError {
    ApiError::not_found(
        Code::WebhookNotFound,
        format!(
            "there is no webhook endpoint {:?} in {environment}",
            id.as_str()
        ),
    )
}
