//! `ApiError`: every failure as the JSON error body, with its HTTP status; [`status_of`] is the
//! only place that maps a [`Code`] to a status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use thumbd_codes::Code;
use utoipa::ToSchema;

/// The HTTP status of an answer whose code is `code`: the only place that decides it. The
/// codes that only appear as a 422 `InvalidThumbnailRequest`'s detail answer 422; codes that
/// only a failed job carries are answered as the job's failure would be
/// ([`ApiError::from_image_code`]).
pub fn status_of(code: Code) -> StatusCode {
    match code {
        Code::InvalidQueryParameter | Code::InvalidRequestBody | Code::WebhookUrlNotAllowed => {
            StatusCode::BAD_REQUEST
        }
        Code::HeaderNotFound | Code::InvalidToken => StatusCode::UNAUTHORIZED,
        Code::InsufficientPermissions | Code::InvalidSignature => StatusCode::FORBIDDEN,
        Code::ThumbnailNotFound
        | Code::RenditionNotFound
        | Code::JobNotFound
        | Code::ContextNotFound
        | Code::UploadTicketNotFound
        | Code::WebhookNotFound
        | Code::RouteNotFound => StatusCode::NOT_FOUND,
        Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Code::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Code::InvalidThumbnailRequest
        | Code::MissingRequiredHeader
        | Code::InvalidHeaderValue
        | Code::InvalidThumbnailFormat
        | Code::ThumbnailTooSmall
        | Code::ImageDimensionsTooLarge
        | Code::CorruptImage
        | Code::ProcessingTimeout => StatusCode::UNPROCESSABLE_ENTITY,
        Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        Code::SourceFetchFailed | Code::SourceNotAllowed | Code::SourceTooLarge => {
            StatusCode::BAD_GATEWAY
        }
        Code::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        Code::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Whether `code` is given only as the detail of a 422 `InvalidThumbnailRequest`.
fn is_detail(code: Code) -> bool {
    matches!(
        code,
        Code::MissingRequiredHeader
            | Code::InvalidHeaderValue
            | Code::InvalidThumbnailFormat
            | Code::ThumbnailTooSmall
            | Code::ImageDimensionsTooLarge
            | Code::CorruptImage
            | Code::ProcessingTimeout
    )
}

/// One line of the error table: `` `CorruptImage` (422 detail): the image cannot be decoded``.
pub fn describe_code(code: Code) -> String {
    let detail = if is_detail(code) { " detail" } else { "" };
    format!(
        "`{code}` ({}{detail}): {}",
        status_of(code).as_u16(),
        code.meaning()
    )
}

/// The README's error table: a row per code, in [`Code::ALL`]'s order.
pub fn error_table() -> String {
    let mut table = String::from("| code | status | meaning |\n|---|---|---|\n");
    for &code in Code::ALL {
        let detail = if is_detail(code) { " (a detail)" } else { "" };
        table.push_str(&format!(
            "| `{code}` | {}{detail} | {} |\n",
            status_of(code).as_u16(),
            code.meaning().replace('|', "\\|")
        ));
    }
    table
}

/// The schema of `code`: one of [`Code::ALL`], each explained in the description.
fn code_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let mut description = String::from("A stable code:\n");
    for &code in Code::ALL {
        description.push_str(&format!("- {}\n", describe_code(code)));
    }
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(Code::ALL.iter().map(|c| c.as_str())))
        .description(Some(description))
        .build()
}

/// One entry of `details`, or the top-level error itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code.
    #[schema(schema_with = code_schema)]
    pub code: Code,
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

/// The body of every error answer .
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
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status: status_of(code),
            detail: ErrorDetail {
                code,
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
    pub fn code(&self) -> Code {
        self.detail.code
    }

    /// 400 `InvalidQueryParameter` about `param`.
    pub fn invalid_query(param: &str, message: impl Into<String>) -> Self {
        Self::new(Code::InvalidQueryParameter, message).with_target(param)
    }

    /// 400 `InvalidRequestBody`.
    pub fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidRequestBody, message).with_target("body")
    }

    /// 401 `HeaderNotFound`: no `Authorization` header.
    pub fn no_auth_header() -> Self {
        let mut e = Self::new(
            Code::HeaderNotFound,
            "the Authorization header is missing: send `Authorization: Bearer <token>`",
        )
        .with_target("authorization");
        e.www_authenticate = true;
        e
    }

    /// 401 `InvalidToken`.
    pub fn invalid_token(message: impl Into<String>) -> Self {
        let mut e = Self::new(Code::InvalidToken, message).with_target("authorization");
        e.www_authenticate = true;
        e
    }

    /// 403 `InsufficientPermissions`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::InsufficientPermissions, message)
    }

    /// 404 with a resource-specific code (`ThumbnailNotFound`, `JobNotFound`, …).
    pub fn not_found(code: Code, message: impl Into<String>) -> Self {
        debug_assert_eq!(status_of(code), StatusCode::NOT_FOUND, "{code}");
        Self::new(code, message)
    }

    /// 404 `RouteNotFound`: no such endpoint.
    pub fn no_route(path: &str) -> Self {
        Self::new(Code::RouteNotFound, format!("there is no endpoint {path}"))
    }

    /// 405 `MethodNotAllowed`.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            Code::MethodNotAllowed,
            format!("{method} is not allowed on {path}"),
        )
    }

    /// 413 `RequestTooLarge`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            Code::RequestTooLarge,
            format!("the request body is over the limit of {limit} bytes"),
        )
        .with_target("body")
    }

    /// 422 `InvalidThumbnailRequest` with one detail.
    pub fn invalid_thumbnail(code: Code, message: impl Into<String>, target: Option<&str>) -> Self {
        let detail = ErrorDetail {
            code,
            message: message.into(),
            target: target.map(Into::into),
        };
        let mut e = Self::new(
            Code::InvalidThumbnailRequest,
            format!("the thumbnail request is invalid: {}", detail.message),
        );
        e.details.push(detail);
        e
    }

    /// The answer for a thumbcore error found synchronously, or for the failure of a job
    /// the request waited for: every code decided here, with no wildcard.
    pub fn from_image_code(code: Code, message: impl Into<String>) -> Self {
        match code {
            Code::RequestTooLarge => Self::new(code, message),
            Code::InvalidHeaderValue => {
                Self::invalid_thumbnail(code, message, Some("content-type"))
            }
            Code::InvalidThumbnailFormat
            | Code::ThumbnailTooSmall
            | Code::ImageDimensionsTooLarge
            | Code::CorruptImage
            | Code::ProcessingTimeout
            | Code::MissingRequiredHeader => Self::invalid_thumbnail(code, message, Some("body")),
            Code::SourceNotAllowed | Code::SourceFetchFailed | Code::SourceTooLarge => {
                Self::new(code, message)
            }
            Code::InvalidRequestBody => Self::invalid_body(message),
            // A job the queue refused (replayed through its idempotency key).
            Code::ServiceUnavailable => Self::unavailable(message),
            // Not a job's failure: the message is not for the client.
            Code::InternalError
            | Code::InvalidQueryParameter
            | Code::HeaderNotFound
            | Code::InvalidToken
            | Code::InsufficientPermissions
            | Code::InvalidSignature
            | Code::ThumbnailNotFound
            | Code::RenditionNotFound
            | Code::JobNotFound
            | Code::ContextNotFound
            | Code::UploadTicketNotFound
            | Code::WebhookNotFound
            | Code::WebhookUrlNotAllowed
            | Code::RouteNotFound
            | Code::MethodNotAllowed
            | Code::InvalidThumbnailRequest
            | Code::TooManyRequests => Self::internal(),
        }
    }

    /// 429 `TooManyRequests`, with `Retry-After` (whole seconds, at least 1) from `wait`.
    pub fn too_many_requests(wait: std::time::Duration) -> Self {
        let mut e = Self::new(
            Code::TooManyRequests,
            "too many requests from this client; slow down and retry after the time in Retry-After",
        );
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        e.retry_after = Some(u32::try_from(secs.max(1)).unwrap_or(u32::MAX));
        e
    }

    /// 500 `InternalError`; the cause belongs in the log, not the body.
    pub fn internal() -> Self {
        Self::new(
            Code::InternalError,
            "an internal error occurred; it has been logged",
        )
    }

    /// 503 `ServiceUnavailable` with `Retry-After`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(Code::ServiceUnavailable, message);
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

    /// The README's error table is [`error_table`]. `THUMBD_UPDATE_README=1 cargo test
    /// --workspace readme` rewrites it (and the settings table).
    #[test]
    fn readme_error_table_is_the_code_enum() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let (head, rest) = readme
            .split_once("<!-- codes:table -->\n")
            .expect("start marker");
        let (_, tail) = rest.split_once("<!-- codes:end -->").expect("end marker");
        let expected = format!(
            "{head}<!-- codes:table -->\n{}<!-- codes:end -->{tail}",
            error_table()
        );
        if std::env::var_os("THUMBD_UPDATE_README").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        assert!(
            readme == expected,
            "README error table is stale: run THUMBD_UPDATE_README=1 cargo test --workspace readme"
        );
    }

    #[test]
    fn a_job_that_ran_out_of_time_is_the_inputs_fault() {
        // Like CorruptImage: a 422 whose detail names the code (the same bytes would take as
        // long again, so it is not a 5xx to retry).
        for code in [Code::CorruptImage, Code::ProcessingTimeout] {
            let e = ApiError::from_image_code(code, "too slow");
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{code}");
            assert_eq!(e.detail.code, Code::InvalidThumbnailRequest, "{code}");
            assert_eq!(e.details[0].code, code);
        }
    }
}
