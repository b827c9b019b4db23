//! `/v1/contexts/{contextId}` (ClassKit): client objects that reference a thumbnail. When
//! the last context referencing a thumbnail is deleted or re-pointed, the store deletes the
//! thumbnail in the same transaction and the handler deletes its bytes.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use thumbd_codes::Code;
use thumbd_jobs::{
    ContextChange, ContextId, ContextRecord, Environment, Namespace, ThumbnailId, Timestamp,
};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Scope;
use crate::error::{ApiError, ErrorBody};
use crate::request::{
    MAX_JSON_BYTES, authorized_target, json_object, path_context_id, read_body, require_json,
};

/// Fields thumbd sets in a context's view; a client's own values for them are not kept.
const RESERVED: [&str; 4] = ["contextId", "environment", "createdAt", "updatedAt"];

/// A context: the client's own JSON object, with `thumbnailId` and the fields thumbd sets.
/// Also the body of `PUT` (where the read-only fields are ignored).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextView {
    /// The context's id (the path's `{contextId}`).
    #[schema(read_only)]
    pub context_id: String,
    /// The namespace.
    #[schema(read_only)]
    pub environment: Environment,
    /// The thumbnail this context references (1–255 bytes of UTF-8). When the last context
    /// referencing a thumbnail is deleted or re-pointed, the thumbnail is deleted too.
    pub thumbnail_id: String,
    /// When the context was first put.
    #[schema(read_only)]
    pub created_at: Timestamp,
    /// When it was last put.
    #[schema(read_only)]
    pub updated_at: Timestamp,
    /// The client's other fields, kept as they were sent.
    #[serde(flatten)]
    #[schema(additional_properties)]
    pub fields: Map<String, Value>,
}

/// The `{contextId}` and namespace of a request, once `scope` is authorized.
fn target(
    state: &AppState,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<(Namespace, ContextId), ApiError> {
    authorized_target(state, query, headers, scope, || path_context_id(id))
}

/// Create or replace a context.
///
/// A JSON object holding `thumbnailId` and any fields of the client's own: 201 when created,
/// 200 when replaced; the body is the context's view. Re-pointing the last context that
/// referenced a thumbnail deletes that thumbnail.
#[utoipa::path(
    put,
    path = "/v1/contexts/{contextId}",
    operation_id = "putContext",
    tag = "contexts",
    security(("bearer" = ["thumbnails:write"])),
    params(
        ("contextId" = String, Path, description = "The context's id: 1–255 bytes of UTF-8 once percent-decoded"),
        ("environment" = Environment, Query, description = "The namespace"),
    ),
    request_body(content = ContextView, content_type = "application/json",
        description = "`thumbnailId` and any other fields; `contextId`, `environment`, `createdAt` and `updatedAt` are set by thumbd"),
    responses(
        (status = 200, description = "Replaced", body = ContextView),
        (status = 201, description = "Created", body = ContextView),
        (status = 400, description = "`InvalidQueryParameter` (target: `environment` or `contextId`), or `InvalidRequestBody`: not a JSON object, or `thumbnailId` missing or invalid (target: `thumbnailId`)", body = ErrorBody),
        (status = 413, description = "`RequestTooLarge`: over the JSON size limit", body = ErrorBody),
        (status = 422, description = "`InvalidThumbnailRequest` with `details[0].code` `MissingRequiredHeader` or `InvalidHeaderValue`: the body must be `application/json`", body = ErrorBody),
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
    let (namespace, context_id) = target(&state, &id, query.as_deref(), &headers, Scope::Write)?;
    require_json(&headers)?;
    let mut object = json_object(&read_body(&headers, body, MAX_JSON_BYTES).await?)?;
    let thumbnail_id = match object.get("thumbnailId") {
        Some(Value::String(s)) => ThumbnailId::parse(s)
            .map_err(|e| ApiError::invalid_body(e.to_string()).with_target("thumbnailId"))?,
        Some(_) => {
            return Err(
                ApiError::invalid_body("`thumbnailId` must be a string").with_target("thumbnailId")
            );
        }
        None => {
            return Err(ApiError::invalid_body(
                "a context needs `thumbnailId`: the thumbnail it references",
            )
            .with_target("thumbnailId"));
        }
    };
    for field in RESERVED {
        object.remove(field);
    }
    let now = Timestamp::now();
    let mut record = ContextRecord {
        tenant: namespace.tenant,
        environment: namespace.environment,
        context_id,
        thumbnail_id,
        body: Value::Object(object).to_string(),
        created_at: now,
        updated_at: now,
    };
    let change = state.store.put_context(&record).await?;
    delete_orphan(&state, &change).await;
    let status = match &change.previous {
        Some(previous) => {
            record.created_at = previous.created_at;
            StatusCode::OK
        }
        None => StatusCode::CREATED,
    };
    Ok((status, axum::Json(view(record)?)).into_response())
}

/// Get a context.
#[utoipa::path(
    get,
    path = "/v1/contexts/{contextId}",
    operation_id = "getContext",
    tag = "contexts",
    security(("bearer" = ["thumbnails:read"])),
    params(
        ("contextId" = String, Path, description = "The context's id: 1–255 bytes of UTF-8 once percent-decoded"),
        ("environment" = Environment, Query, description = "The namespace"),
    ),
    responses(
        (status = 200, description = "The context", body = ContextView),
        (status = 400, description = "`InvalidQueryParameter` (target: `environment` or `contextId`)", body = ErrorBody),
        (status = 404, description = "`ContextNotFound`", body = ErrorBody),
        (status = 503, description = "`ServiceUnavailable`: the store does not answer", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (namespace, id) = target(&state, &id, query.as_deref(), &headers, Scope::Read)?;
    let record = state
        .store
        .context(&namespace, &id)
        .await?
        .ok_or_else(|| not_found(&id, namespace.environment))?;
    Ok(axum::Json(view(record)?).into_response())
}

/// Delete a context.
///
/// The thumbnail it referenced goes too if this was the last context referencing it.
#[utoipa::path(
    delete,
    path = "/v1/contexts/{contextId}",
    operation_id = "deleteContext",
    tag = "contexts",
    security(("bearer" = ["thumbnails:write"])),
    params(
        ("contextId" = String, Path, description = "The context's id: 1–255 bytes of UTF-8 once percent-decoded"),
        ("environment" = Environment, Query, description = "The namespace"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`InvalidQueryParameter` (target: `environment` or `contextId`)", body = ErrorBody),
        (status = 404, description = "`ContextNotFound`", body = ErrorBody),
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
    let change = state
        .store
        .delete_context(&namespace, &id)
        .await?
        .ok_or_else(|| not_found(&id, namespace.environment))?;
    delete_orphan(&state, &change).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Deletes the bytes of the thumbnail a change removed.
async fn delete_orphan(state: &AppState, change: &ContextChange) {
    if let Some(thumbnail) = &change.deleted_thumbnail {
        state.intake.webhooks().nudge();
        tracing::info!(thumbnail_id = %thumbnail.thumbnail_id, environment = %thumbnail.environment, "no context references the thumbnail any more: deleted");
        super::thumbnails::delete_set(state, &thumbnail.result).await;
    }
}

/// The client's object with thumbd's fields set.
fn view(record: ContextRecord) -> Result<ContextView, ApiError> {
    let mut fields = match serde_json::from_str::<Value>(&record.body) {
        Ok(Value::Object(map)) => map,
        _ => {
            tracing::error!(context_id = %record.context_id, "a stored context is not a JSON object");
            return Err(ApiError::internal());
        }
    };
    // The stored body keeps `thumbnailId`; thumbd's own fields win over anything stored.
    for field in RESERVED.iter().chain(&["thumbnailId"]) {
        fields.remove(*field);
    }
    Ok(ContextView {
        context_id: record.context_id.as_str().to_owned(),
        environment: record.environment,
        thumbnail_id: record.thumbnail_id.as_str().to_owned(),
        created_at: record.created_at,
        updated_at: record.updated_at,
        fields,
    })
}

fn not_found(id: &ContextId, environment: Environment) -> ApiError {
    ApiError::not_found(
        Code::ContextNotFound,
        format!("there is no context {:?} in {environment}", id.as_str()),
    )
}
