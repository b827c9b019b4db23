//! `GET /openapi.json`: the OpenAPI 3.1 description of the API ([`crate::openapi()`] builds
//! it).
//!
//! Each handler carries its `#[utoipa::path]`: parameters, body, success answers and the
//! errors the handler itself can produce. The router registers handlers through
//! utoipa-axum's `routes!`, which takes the method and path from that annotation, so a route
//! cannot exist without its description. Answers that come from around the handlers are
//! added here, once, where they apply: 429 on every rate-limited operation, 401 and 403 on
//! every operation that declares the bearer scheme, 500 on every operation (panics are
//! caught and answered `InternalError`).

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr, ResponseBuilder, schema::Type,
};
use utoipa::{PartialSchema as _, ToSchema as _};

use crate::error::ErrorBody;

/// Info, tags and the schemas every document needs; the paths come from the routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "thumbd",
        description = "A thumbnail service: upload an image (or point at one), thumbd validates \
            it, scales it to thumbnail size, re-encodes it, stores it and serves it back. Heavy \
            work runs on workers: a create answers `201` when the job finished within the wait \
            (`Prefer: wait=N`, `Prefer: respond-async`), else `202` with a status URL to poll.\n\n\
            `environment` (`development` or `production`) selects one of two isolated \
            namespaces. Every error is the JSON body `ErrorBody` with a stable `code`; an \
            unknown path answers 404 `RouteNotFound`, a known path with another method 405 \
            `MethodNotAllowed`."
    ),
    tags(
        (name = "thumbnails", description = "Create or replace, read and delete thumbnails"),
        (name = "jobs", description = "The status of the job behind a create"),
        (name = "uploads", description = "Originals stored now, turned into thumbnails later by ticket"),
        (name = "contexts", description = "Client objects that reference a thumbnail (ClassKit)"),
        (name = "webhooks", description = "Endpoints thumbd posts events to, signed the Standard Webhooks way, and their deliveries"),
        (name = "operations", description = "Health, readiness, metrics and this document; no token"),
    ),
    components(schemas(ErrorBody))
)]
pub(crate) struct ApiDoc;

/// The name of the bearer security scheme in `security(...)` annotations.
const BEARER: &str = "bearer";

/// Adds 429 `TooManyRequests` to every operation of `doc`: for routes behind the rate limit.
pub(crate) fn rate_limited(doc: &mut OpenApi) {
    for operation in operations(doc) {
        add(operation, "429", "TooManyRequests");
    }
}

/// Adds what the layers and the bearer scheme answer: the security scheme, the shared error
/// responses, 401 and 403 on secured operations and 500 on all.
pub(crate) fn finish(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "A JWT (HS256, RS256 or EdDSA, as the server is configured) whose `scope` \
                     claim holds `thumbnails:read`, `thumbnails:write` and/or `webhooks:manage` (space-separated) \
                     and whose optional `environment` claim \
                     limits it to one environment; `thumbd token` mints one. The `tenant` claim \
                     (name configurable; 1-64 of A-Z a-z 0-9 . _ -) scopes every id: another \
                     tenant's thumbnails, contexts, uploads and jobs answer 404; a token without \
                     it belongs to the tenant `default`. A server may let reads through without \
                     a token, or run without authentication.",
                ))
                .build(),
        ),
    );
    for (name, description, retry_after) in [
        (
            "Unauthorized",
            "`HeaderNotFound` (no `Authorization`) or `InvalidToken` (malformed, badly signed, \
             expired, wrong algorithm). Carries `WWW-Authenticate: Bearer`.",
            false,
        ),
        (
            "Forbidden",
            "`InsufficientPermissions`: the token lacks the scope, or is limited to the other \
             environment.",
            false,
        ),
        (
            "TooManyRequests",
            "`TooManyRequests`: over this client's rate limit (per token subject, else per \
             address).",
            true,
        ),
        (
            "InternalError",
            "`InternalError`: the cause is in the server's log, never in the body.",
            false,
        ),
    ] {
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        );
        if retry_after {
            response = response.header("Retry-After", retry_after_header());
        }
        if name == "Unauthorized" {
            response = response.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(String::schema()))
                    .description(Some("`Bearer`"))
                    .build(),
            );
        }
        components
            .responses
            .insert(name.to_owned(), RefOr::T(response.build()));
    }
    for operation in operations(doc) {
        if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
            add(operation, "401", "Unauthorized");
            add(operation, "403", "Forbidden");
        }
        add(operation, "500", "InternalError");
    }
}

/// `Retry-After` in whole seconds.
fn retry_after_header() -> utoipa::openapi::Header {
    HeaderBuilder::new()
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        ))
        .description(Some("Seconds to wait before trying again"))
        .build()
}

/// Every operation of every path.
fn operations(doc: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .filter_map(Option::as_mut)
    })
}

/// Adds `status` as a reference to the shared response `name`, unless the handler's own
/// annotation already describes that status.
fn add(operation: &mut Operation, status: &str, name: &str) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))));
}

/// The document, serialised once per process.
static DOCUMENT: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(
        crate::openapi()
            .to_json()
            .expect("an OpenAPI document serialises"),
    )
});

/// This document.
///
/// The OpenAPI 3.1 description of every endpoint, generated from the handlers. No token
/// needed, not rate limited.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI document", body = Object, content_type = "application/json"),
    )
)]
pub async fn document() -> Response {
    let mut response = DOCUMENT.clone().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
