//! `/v1/contexts/{contextId}` (ClassKit): client objects that reference a thumbnail. When
//! the last context referencing a thumbnail is deleted or re-pointed, the store deletes the
//! thumbnail in the same transaction and the handler deletes its bytes.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use thumbd_jobs::{ContextChange, ContextId, ContextRecord, Environment, ThumbnailId, Timestamp};

use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::request::{
    MAX_JSON_BYTES, QueryParams, json_object, path_context_id, read_body, require_json,
};

/// Fields thumbd sets in a context's view; a client's own values for them are not kept.
const RESERVED: [&str; 4] = ["contextId", "environment", "createdAt", "updatedAt"];

/// The `{contextId}` and `environment` of a request, once `scope` is authorized.
fn target(
    state: &AppState,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<(Environment, ContextId), ApiError> {
    let environment = QueryParams::parse(query)?.environment()?;
    let id = path_context_id(id)?;
    state.auth.authorize(headers, scope, Some(environment))?;
    Ok((environment, id))
}

/// `PUT /v1/contexts/{contextId}?environment=` with a JSON object holding `thumbnailId`:
/// 201 when created, 200 when replaced; the body is the context's view.
pub async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (environment, context_id) = target(&state, &id, query.as_deref(), &headers, Scope::Write)?;
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
        environment,
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
    Ok((status, axum::Json(view(&record)?)).into_response())
}

/// `GET /v1/contexts/{contextId}?environment=`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (environment, id) = target(&state, &id, query.as_deref(), &headers, Scope::Read)?;
    let record = state
        .store
        .context(environment, &id)
        .await?
        .ok_or_else(|| not_found(&id, environment))?;
    Ok(axum::Json(view(&record)?).into_response())
}

/// `DELETE /v1/contexts/{contextId}?environment=`: 204; the thumbnail goes too if this was
/// the last context referencing it.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (environment, id) = target(&state, &id, query.as_deref(), &headers, Scope::Write)?;
    let change = state
        .store
        .delete_context(environment, &id)
        .await?
        .ok_or_else(|| not_found(&id, environment))?;
    delete_orphan(&state, &change).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Deletes the bytes of the thumbnail a change removed.
async fn delete_orphan(state: &AppState, change: &ContextChange) {
    if let Some(thumbnail) = &change.deleted_thumbnail {
        let key = &thumbnail.result.blob_key;
        tracing::info!(thumbnail_id = %thumbnail.thumbnail_id, environment = %thumbnail.environment, "no context references the thumbnail any more: deleted");
        if let Err(e) = state.blobs.delete(key).await {
            tracing::warn!(blob = %key, error = %e, "cannot delete a thumbnail's blob");
        }
    }
}

/// The client's object with thumbd's fields set.
fn view(record: &ContextRecord) -> Result<Map<String, Value>, ApiError> {
    let mut object = match serde_json::from_str::<Value>(&record.body) {
        Ok(Value::Object(map)) => map,
        _ => {
            tracing::error!(context_id = %record.context_id, "a stored context is not a JSON object");
            return Err(ApiError::internal());
        }
    };
    object.insert("contextId".into(), record.context_id.as_str().into());
    object.insert("environment".into(), record.environment.as_str().into());
    object.insert("thumbnailId".into(), record.thumbnail_id.as_str().into());
    object.insert("createdAt".into(), record.created_at.to_rfc3339().into());
    object.insert("updatedAt".into(), record.updated_at.to_rfc3339().into());
    Ok(object)
}

fn not_found(id: &ContextId, environment: Environment) -> ApiError {
    ApiError::not_found(
        "ContextNotFound",
        format!("there is no context {:?} in {environment}", id.as_str()),
    )
}
