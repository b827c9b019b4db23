//! `/v1/thumbnails`: create or replace (both forms) in [`create`]; get, HEAD and delete in
//! [`read`].

use axum::http::{HeaderMap, HeaderValue};
use thumbd_jobs::{JobResult, Namespace, ThumbnailId};

use crate::AppState;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::request::{authorized_target, path_thumbnail_id};

pub mod create;
pub mod read;

pub(crate) use create::check_image;

/// The `{id}` and namespace of a request on one thumbnail, once `scope` is authorized.
pub(super) fn target(
    state: &AppState,
    id: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<(Namespace, ThumbnailId), ApiError> {
    authorized_target(state, query, headers, scope, || path_thumbnail_id(id))
}

/// A header value from a string thumbd built (a URL or an entity tag).
pub(super) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).expect("URLs we build are valid header values")
}

/// Deletes every blob of a thumbnail's set that a deletion removed (each rendition's, and
/// the sources of pending ones); failures are logged, never answered.
pub(in crate::handlers) async fn delete_set(state: &AppState, result: &JobResult) {
    for key in result.blob_keys() {
        if let Err(e) = state.blobs.delete(&key).await {
            tracing::warn!(blob = %key, error = %e, "cannot delete a thumbnail's blob");
        }
    }
}
