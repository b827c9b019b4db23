//! `ApiError`: every failure as the JSON body of SPEC §3, with its HTTP status. The only
//! place that maps codes to statuses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Every stable code an answer (or a failed job's `error`) can carry, with its status and
/// meaning: the `code` enum of the OpenAPI document. `tests/openapi.rs` checks this list
/// against the code strings in the sources, both ways, so it cannot go stale silently.
pub(crate) const CODES: [(&str, &str); 26] = [
    (
        "InvalidQueryParameter",
        "400: a query or path parameter is missing, repeated or invalid (target: its name)",
    ),
    (
        "InvalidRequestBody",
        "400: the JSON or multipart body is malformed or lacks a field (target: the field)",
    ),
    (
        "HeaderNotFound",
        "401: no `Authorization` header (target: authorization)",
    ),
    (
        "InvalidToken",
        "401: the bearer token is malformed, badly signed, expired or of the wrong algorithm",
    ),
    (
        "InsufficientPermissions",
        "403: the token lacks the scope, or is limited to the other environment",
    ),
    (
        "ThumbnailNotFound",
        "404: no such thumbnail in this environment",
    ),
    ("JobNotFound", "404: no such job"),
    (
        "ContextNotFound",
        "404: no such context in this environment",
    ),
    (
        "UploadTicketNotFound",
        "404: no such upload ticket, or it has expired",
    ),
    ("RouteNotFound", "404: no such endpoint"),
    (
        "MethodNotAllowed",
        "405: the endpoint exists, not with this method",
    ),
    (
        "RequestTooLarge",
        "413: the body is over the limit (decided from Content-Length or while streaming)",
    ),
    (
        "InvalidThumbnailRequest",
        "422: the image or its headers are not acceptable; `details[0]` says why",
    ),
    (
        "MissingRequiredHeader",
        "422 detail: no `Content-Type` (target: content-type)",
    ),
    (
        "InvalidHeaderValue",
        "422 detail: an unsupported `Content-Type` (e.g. image/gif) or a bad `Idempotency-Key`",
    ),
    (
        "InvalidThumbnailFormat",
        "422 detail: the bytes are not a PNG or JPEG, or not the declared type",
    ),
    (
        "ThumbnailTooSmall",
        "422 detail: under 80×80 pixels after orientation",
    ),
    (
        "ImageDimensionsTooLarge",
        "422 detail: over the pixel limit",
    ),
    ("CorruptImage", "422 detail: the image cannot be decoded"),
    (
        "ProcessingTimeout",
        "422 detail (of a job): making the thumbnail took longer than the job time limit",
    ),
    (
        "TooManyRequests",
        "429: over this client's rate limit; retry after `Retry-After` seconds",
    ),
    (
        "SourceFetchFailed",
        "502 (or a failed job): the URL source could not be downloaded",
    ),
    (
        "SourceNotAllowed",
        "502 (or a failed job): the URL source points somewhere thumbd may not go",
    ),
    (
        "SourceTooLarge",
        "502 (or a failed job): the URL source is over the size limit",
    ),
    (
        "InternalError",
        "500: a bug or an inconsistency; the cause is in the server's log, not the body",
    ),
    (
        "ServiceUnavailable",
        "503: the store, queue or blob store is unreachable; retry after `Retry-After`",
    ),
];

/// The schema of `code`: a string from [`CODES`], each explained in the description.
fn code_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let mut description = String::from("A stable code (SPEC §3):\n");
    for (code, meaning) in CODES {
        description.push_str(&format!("- `{code}`: {meaning}\n"));
    }
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(CODES.map(|(code, _)| code)))
        .description(Some(description))
        .build()
}

/// One entry of `details`, or the top-level error itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code.
    #[schema(schema_with = code_schema)]
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// What the error is about (a parameter, a header, `body`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// An error answer: status, code, message, optional target, details and Retry-After.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    detail: ErrorDetail,
    details: Vec<ErrorDetail>,
    retry_after: Option<u32>,
    www_authenticate: bool,
}

/// The body of every error answer (SPEC §3).
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody<'a> {
    error: ErrorObject<'a>,
}

/// What went wrong: a stable `code`, a message for humans, what it is about, and finer causes.
#[derive(Serialize, ToSchema)]
struct ErrorObject<'a> {
    #[serde(flatten)]
    detail: &'a ErrorDetail,
    /// The causes: for 422 `InvalidThumbnailRequest`, one entry saying what is wrong with the
    /// image or its headers.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    details: &'a [ErrorDetail],
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: ErrorDetail {
                code: code.into(),
                message: message.into(),
                target: None,
            },
            details: Vec::new(),
            retry_after: None,
            www_authenticate: false,
        }
    }

    /// Sets the `target`.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.detail.target = Some(target.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.detail.code
    }

    /// 400 `InvalidQueryParameter` about `param`.
    pub fn invalid_query(param: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidQueryParameter", message).with_target(param)
    }

    /// 400 `InvalidRequestBody`.
    pub fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestBody", message).with_target("body")
    }

    /// 401 `HeaderNotFound`: no `Authorization` header.
    pub fn no_auth_header() -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "HeaderNotFound",
            "the Authorization header is missing: send `Authorization: Bearer <token>`",
        )
        .with_target("authorization");
        e.www_authenticate = true;
        e
    }

    /// 401 `InvalidToken`.
    pub fn invalid_token(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "InvalidToken", message)
            .with_target("authorization");
        e.www_authenticate = true;
        e
    }

    /// 403 `InsufficientPermissions`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "InsufficientPermissions", message)
    }

    /// 404 with a resource-specific code (`ThumbnailNotFound`, `JobNotFound`, …).
    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 404 `RouteNotFound`: no such endpoint.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "RouteNotFound",
            format!("there is no endpoint {path}"),
        )
    }

    /// 405 `MethodNotAllowed`.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not allowed on {path}"),
        )
    }

    /// 413 `RequestTooLarge`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLarge",
            format!("the request body is over the limit of {limit} bytes"),
        )
        .with_target("body")
    }

    /// 422 `InvalidThumbnailRequest` with one detail.
    pub fn invalid_thumbnail(code: &str, message: impl Into<String>, target: Option<&str>) -> Self {
        let detail = ErrorDetail {
            code: code.into(),
            message: message.into(),
            target: target.map(Into::into),
        };
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidThumbnailRequest",
            format!("the thumbnail request is invalid: {}", detail.message),
        );
        e.details.push(detail);
        e
    }

    /// The answer for a thumbcore error found synchronously (or by a job that failed while
    /// the request waited).
    pub fn from_image_code(code: &str, message: impl Into<String>) -> Self {
        match code {
            "RequestTooLarge" => Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message),
            "InvalidHeaderValue" => Self::invalid_thumbnail(code, message, Some("content-type")),
            "InvalidThumbnailFormat"
            | "ThumbnailTooSmall"
            | "ImageDimensionsTooLarge"
            | "CorruptImage"
            | "ProcessingTimeout"
            | "MissingRequiredHeader" => Self::invalid_thumbnail(code, message, Some("body")),
            "SourceNotAllowed" | "SourceFetchFailed" | "SourceTooLarge" => {
                Self::new(StatusCode::BAD_GATEWAY, code, message)
            }
            "InvalidRequestBody" => Self::invalid_body(message),
            // A job the queue refused (replayed through its idempotency key).
            "ServiceUnavailable" => Self::unavailable(message),
            _ => Self::internal(),
        }
    }

    /// 429 `TooManyRequests`, with `Retry-After` (whole seconds, at least 1) from `wait`.
    pub fn too_many_requests(wait: std::time::Duration) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "too many requests from this client; slow down and retry after the time in Retry-After",
        );
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        e.retry_after = Some(u32::try_from(secs.max(1)).unwrap_or(u32::MAX));
        e
    }

    /// 500 `InternalError`; the cause belongs in the log, not the body.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "an internal error occurred; it has been logged",
        )
    }

    /// 503 `ServiceUnavailable` with `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        );
        e.retry_after = Some(5);
        e
    }
}

impl From<thumbd_jobs::Error> for ApiError {
    fn from(e: thumbd_jobs::Error) -> Self {
        if let thumbd_jobs::Error::Unavailable { backend, .. } = &e {
            tracing::error!(error = %e, "backend unavailable");
            ApiError::unavailable(format!("{backend} is unavailable; retry later"))
        } else if e.is_transient() {
            tracing::error!(error = %e, "backend unavailable");
            ApiError::unavailable("storage is unavailable; retry later")
        } else {
            tracing::error!(error = %e, "internal error");
            ApiError::internal()
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorObject {
                detail: &self.detail,
                details: &self.details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_ran_out_of_time_is_the_inputs_fault() {
        // Like CorruptImage: a 422 whose detail names the code (the same bytes would take as
        // long again, so it is not a 5xx to retry).
        for code in ["CorruptImage", "ProcessingTimeout"] {
            let e = ApiError::from_image_code(code, "too slow");
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{code}");
            assert_eq!(e.detail.code, "InvalidThumbnailRequest", "{code}");
            assert_eq!(e.details[0].code, code);
        }
    }
}
