//! `GET /openapi.json` against the router it describes: the same operations (checked by
//! sending requests, not by trusting the annotations), the statuses the router really
//! answers, the shared error body, and every error code the sources use.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use serde_json::{Value, json};
use thumbd_api::{RateLimit, Scope};

/// The router's routes, written out from README's route table (not from the annotations): every one must
/// be in the document, and the document must hold nothing else.
const ROUTES: [(&str, &str); 23] = [
    ("POST", "/v1/thumbnails"),
    ("GET", "/v1/thumbnails"),
    ("GET", "/v1/jobs"),
    ("GET", "/v1/thumbnails/{id}"),
    ("HEAD", "/v1/thumbnails/{id}"),
    ("PUT", "/v1/thumbnails/{id}"),
    ("DELETE", "/v1/thumbnails/{id}"),
    ("GET", "/v1/thumbnails/{id}/meta"),
    ("GET", "/v1/status/{jobId}"),
    ("POST", "/v1/uploads"),
    ("GET", "/v1/uploads/{ticket}"),
    ("GET", "/v1/contexts/{contextId}"),
    ("PUT", "/v1/contexts/{contextId}"),
    ("DELETE", "/v1/contexts/{contextId}"),
    ("PUT", "/v1/webhooks/{webhookId}"),
    ("GET", "/v1/webhooks/{webhookId}"),
    ("DELETE", "/v1/webhooks/{webhookId}"),
    ("GET", "/v1/webhooks"),
    ("GET", "/v1/webhooks/{webhookId}/deliveries"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

/// Methods probed on every documented path. HEAD is left out: axum answers it wherever GET
/// is served, documented or not (the one HEAD that matters is in [`ROUTES`]).
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

/// Fetches the document through the router and checks how it is served.
async fn document(rig: &Rig) -> Value {
    let a = rig.call(get("/openapi.json", None)).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    a.json()
}

/// `(METHOD, path)` of every operation in `doc`, with the operation.
fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if ["parameters", "summary", "description", "servers"].contains(&method.as_str()) {
                continue;
            }
            ops.insert((method.to_uppercase(), path.clone()), op);
        }
    }
    ops
}

/// `path` with each `{param}` replaced by a sample value.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("closed parameter") + open;
        out.push_str(&rest[..open]);
        out.push_str("sample");
        rest = &rest[close + 1..];
    }
    out + rest
}

fn request(method: &str, uri: &str, auth: Option<&str>) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.body(Body::empty()).unwrap()
}

/// Whether the router has a route for `method` on `path`: anything but the fallbacks' 405
/// `MethodNotAllowed` and 404 `RouteNotFound`. (Without a token, every `/v1` route answers
/// 401 before it could say 404; a bodiless 404 to HEAD counts as the fallback.)
async fn routed(rig: &Rig, method: &str, path: &str) -> bool {
    let a = rig.call(request(method, &concrete(path), None)).await;
    match a.status {
        StatusCode::METHOD_NOT_ALLOWED => false,
        StatusCode::NOT_FOUND => !(a.body.is_empty() || a.code() == "RouteNotFound"),
        _ => true,
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_and_lists_exactly_the_routes_the_router_serves() {
    let rig = rig().await;
    let doc = document(&rig).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "thumbd");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc,
        serde_json::to_value(thumbd_api::openapi()).unwrap(),
        "served as built"
    );

    let ops = operations(&doc);
    let documented: BTreeSet<(String, String)> = ops.keys().cloned().collect();
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(
        documented, expected,
        "documented operations vs README's route table"
    );

    // Independently of the annotations: every route of the table answers from a handler…
    for (method, path) in ROUTES {
        assert!(
            routed(&rig, method, path).await,
            "{method} {path} is not routed"
        );
    }
    // …and on every documented path, a method the document lacks is refused, so the router
    // serves no undocumented method there either.
    let paths: BTreeSet<&str> = ops.keys().map(|(_, p)| p.as_str()).collect();
    for path in paths {
        for method in METHODS {
            let in_doc = documented.contains(&(method.to_owned(), path.to_owned()));
            assert_eq!(
                routed(&rig, method, path).await,
                in_doc,
                "{method} {path}: routed vs documented"
            );
        }
    }

    let ids: Vec<&str> = ops
        .values()
        .map(|op| op["operationId"].as_str().expect("operationId"))
        .collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "operationIds are unique: {ids:?}"
    );
}

/// The response object `r`, following a `$ref` into `components/responses`.
fn resolve<'a>(doc: &'a Value, r: &'a Value) -> &'a Value {
    match r["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/responses/")
                .unwrap_or_else(|| panic!("unexpected response reference {reference}"));
            &doc["components"]["responses"][name]
        }
        None => r,
    }
}

#[tokio::test]
async fn every_error_response_has_the_error_body_and_the_shared_ones_are_everywhere() {
    let rig = rig().await;
    let doc = document(&rig).await;
    for ((method, path), op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        let statuses: BTreeSet<&str> = responses.keys().map(String::as_str).collect();
        assert!(
            statuses.iter().any(|s| s.starts_with('2')),
            "{method} {path}: no success"
        );
        let mut wanted = vec!["500"];
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            wanted.extend(["401", "403"]);
        }
        if path.starts_with("/v1/") {
            wanted.push("429");
            assert_eq!(
                op["security"][0]["bearer"].as_array().map(Vec::len),
                Some(1),
                "{method} {path}: a /v1 operation needs the bearer scheme and its scope"
            );
            // The scope names are the `scope` claim's values, as tokens carry them.
            let scope = op["security"][0]["bearer"][0].as_str();
            let expected = if path.starts_with("/v1/webhooks") {
                "webhooks:manage"
            } else if method.eq_ignore_ascii_case("get") || method.eq_ignore_ascii_case("head") {
                "thumbnails:read"
            } else {
                "thumbnails:write"
            };
            assert_eq!(scope, Some(expected), "{method} {path}");
        }
        for status in wanted {
            assert!(statuses.contains(status), "{method} {path}: no {status}");
        }
        for (status, response) in responses {
            if status.as_str() < "400" {
                continue;
            }
            let response = resolve(&doc, response);
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path} {status}: {response}"
            );
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| d.contains('`')),
                "{method} {path} {status}: the description names the codes: {response}"
            );
            if status == "429" || status == "503" {
                assert!(
                    response["headers"]["Retry-After"].is_object(),
                    "{method} {path} {status}: Retry-After"
                );
            }
        }
    }
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], json!(["error"]));
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(detail["required"], json!(["code", "message"]));
    assert!(detail["properties"]["target"].is_object());
}

/// Every `$ref` in `v`.
fn references<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r);
            }
            map.values().for_each(|v| references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_reference_resolves_and_the_documented_inputs_are_declared() {
    let rig = rig().await;
    let doc = document(&rig).await;
    let mut refs = Vec::new();
    references(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }

    let ops = operations(&doc);
    let op = |m: &str, p: &str| ops[&(m.to_owned(), p.to_owned())];
    let params = |m: &str, p: &str| -> BTreeSet<(String, String)> {
        op(m, p)["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p["in"].as_str().unwrap().to_owned(),
                    p["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let has = |m: &str, p: &str, wanted: &[(&str, &str)]| {
        let got = params(m, p);
        for (location, name) in wanted {
            assert!(
                got.contains(&((*location).to_owned(), (*name).to_owned())),
                "{m} {p}: no {location} parameter {name}: {got:?}"
            );
        }
    };
    has(
        "POST",
        "/v1/thumbnails",
        &[
            ("query", "thumbnailId"),
            ("query", "environment"),
            ("header", "Prefer"),
            ("header", "Idempotency-Key"),
        ],
    );
    has(
        "PUT",
        "/v1/thumbnails/{id}",
        &[
            ("path", "id"),
            ("query", "environment"),
            ("header", "Prefer"),
            ("header", "Idempotency-Key"),
        ],
    );
    for m in ["GET", "HEAD"] {
        has(
            m,
            "/v1/thumbnails/{id}",
            &[
                ("path", "id"),
                ("query", "environment"),
                ("header", "If-None-Match"),
            ],
        );
    }
    has("GET", "/v1/status/{jobId}", &[("path", "jobId")]);
    for m in ["GET", "PUT", "DELETE"] {
        has(
            m,
            "/v1/contexts/{contextId}",
            &[("path", "contextId"), ("query", "environment")],
        );
    }
    assert_eq!(
        doc["components"]["schemas"]["Environment"]["enum"],
        json!(["development", "production"])
    );
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["scheme"], "bearer");
    assert_eq!(bearer["bearerFormat"], "JWT");

    // Bodies.
    let create = &op("POST", "/v1/thumbnails")["requestBody"]["content"];
    assert!(create["image/png"].is_object() && create["image/jpeg"].is_object());
    let source = &doc["components"]["schemas"]["CreateSource"]["oneOf"];
    let required: BTreeSet<&str> = source
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["required"][0].as_str().unwrap())
        .collect();
    assert_eq!(required, BTreeSet::from(["uploadTicket", "url"]));
    // The two forms of create are one operation with the id in another place: their
    // annotations are written twice, so they must not drift apart.
    let (post, put) = (
        op("POST", "/v1/thumbnails"),
        op("PUT", "/v1/thumbnails/{id}"),
    );
    assert_eq!(put["requestBody"], post["requestBody"]);
    assert_eq!(put["responses"], post["responses"]);
    let headers_of = |op: &Value| -> Vec<Value> {
        op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] != "path" && p["name"] != "thumbnailId")
            .cloned()
            .collect()
    };
    assert_eq!(headers_of(put), headers_of(post));
    let form = &op("POST", "/v1/uploads")["requestBody"]["content"]["multipart/form-data"];
    assert_eq!(
        doc.pointer(&form["schema"]["$ref"].as_str().unwrap()[1..])
            .unwrap()["required"],
        json!(["file"])
    );
    let context = &doc["components"]["schemas"]["ContextView"];
    assert!(
        context["required"]
            .as_array()
            .unwrap()
            .contains(&json!("thumbnailId"))
    );
    assert!(context["additionalProperties"].is_object());

    // Success headers.
    let headers = |m: &str, p: &str, status: &str| -> BTreeSet<String> {
        op(m, p)["responses"][status]["headers"]
            .as_object()
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default()
    };
    for (m, p) in [("POST", "/v1/thumbnails"), ("PUT", "/v1/thumbnails/{id}")] {
        for (status, wanted) in [
            (
                "201",
                &["Location", "Preference-Applied", "Idempotent-Replayed"][..],
            ),
            (
                "202",
                &[
                    "Location",
                    "Retry-After",
                    "Preference-Applied",
                    "Idempotent-Replayed",
                ][..],
            ),
        ] {
            let got = headers(m, p, status);
            for h in wanted {
                assert!(got.contains(*h), "{m} {p} {status}: no {h}: {got:?}");
            }
        }
    }
    for status in ["200", "304"] {
        let got = headers("GET", "/v1/thumbnails/{id}", status);
        assert!(
            got.contains("ETag") && got.contains("Cache-Control"),
            "{got:?}"
        );
    }
    assert!(headers("GET", "/v1/status/{jobId}", "200").contains("Retry-After"));
}

/// The documented statuses of an operation.
fn statuses(op: &Value) -> BTreeSet<u16> {
    op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(|s| s.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn what_the_router_answers_is_documented() {
    let rig = rig().await;
    let doc = document(&rig).await;
    let read = format!("Bearer {}", token(&[Scope::Read], None));
    let codes: BTreeSet<String> = documented_codes(&doc);
    // A set of requests per operation: without a token, with too little scope, with bad
    // parameters, with sample ones and a few bodies. Every answer's status must be
    // documented for that operation, and every error code must be a documented one.
    let bodies: [(Option<&str>, Vec<u8>); 8] = [
        (None, Vec::new()),
        (Some("text/plain"), b"x".to_vec()),
        (Some("image/png"), b"not a png".to_vec()),
        (Some("image/png"), png(20, 20)),
        (Some("image/png"), png(100, 100)),
        (
            Some("application/json"),
            br#"{"url": "https://example.com/x.png"}"#.to_vec(),
        ),
        (
            Some("application/json"),
            br#"{"uploadTicket": "up_00000000000000000000000000000000"}"#.to_vec(),
        ),
        (
            Some("application/json"),
            br#"{"thumbnailId": "sample"}"#.to_vec(),
        ),
    ];
    let mut seen = BTreeSet::new();
    // Twice: the second round finds what the first created (a context to get and delete).
    for ((method, path), op) in operations(&doc).into_iter().chain(operations(&doc)) {
        let documented = statuses(op);
        let query = |environment: &str| {
            let mut q = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                match (p["in"].as_str(), p["name"].as_str()) {
                    (Some("query"), Some("environment")) => {
                        q.push(format!("environment={environment}"))
                    }
                    // Parameters with a closed set of values get one that works.
                    (Some("query"), Some(name)) => q.push(format!(
                        "{name}={}",
                        match name {
                            "profile" => "default",
                            "size" => "100",
                            "format" => "png",
                            _ => "sample",
                        }
                    )),
                    _ => {}
                }
            }
            if q.is_empty() {
                String::new()
            } else {
                format!("?{}", q.join("&"))
            }
        };
        let good = format!("{}{}", concrete(&path), query("production"));
        let bad = format!("{}{}", concrete(&path), query("staging"));
        let mut requests = vec![
            request(&method, &good, None),
            request(&method, &good, Some(&read)),
            request(&method, &bad, Some(&rw())),
        ];
        for (content_type, body) in &bodies {
            let mut r = Request::builder()
                .method(method.as_str())
                .uri(&good)
                .header("authorization", rw())
                .header("prefer", "respond-async");
            if let Some(ct) = content_type {
                r = r.header("content-type", *ct);
            }
            requests.push(r.body(Body::from(body.clone())).unwrap());
        }
        for req in requests {
            let described = format!("{} {}", req.method(), req.uri());
            let a = rig.call(req).await;
            let status = a.status.as_u16();
            assert!(
                documented.contains(&status),
                "{described} answered {status}, not documented for {method} {path} ({documented:?}): {:?}",
                String::from_utf8_lossy(&a.body)
            );
            if status >= 400 && method != "HEAD" {
                let code = a.code();
                assert!(
                    codes.contains(&code),
                    "{described}: undocumented code {code}"
                );
            }
            seen.insert((method.clone(), path.clone(), status));
        }
    }
    // The probe reached more than the gate: successes, 4xx of several kinds.
    for status in [200, 201, 202, 204, 400, 401, 403, 404, 422] {
        assert!(
            seen.iter().any(|(_, _, s)| *s == status),
            "no request answered {status}: {seen:?}"
        );
    }
}

/// The `code` enum of the error schema.
fn documented_codes(doc: &Value) -> BTreeSet<String> {
    doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
        .as_array()
        .expect("the code enum")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_documented_codes_are_the_code_enum() {
    let rig = rig().await;
    let doc = document(&rig).await;
    let documented = documented_codes(&doc);
    let all: BTreeSet<String> = thumbd_codes::Code::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(documented, all);
    let description =
        doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["description"]
            .as_str()
            .unwrap();
    for &code in thumbd_codes::Code::ALL {
        assert!(
            description.contains(&thumbd_api::describe_code(code)),
            "{code} in {description}"
        );
    }
    assert!(description.contains("`CorruptImage` (422 detail): the image cannot be decoded"));
}

#[tokio::test]
async fn the_document_needs_no_token_and_no_rate_allowance() {
    let mut rig = rig().await;
    rig.state.rate_limit = Arc::new(RateLimit::per_second(1));
    for _ in 0..5 {
        document(&rig).await;
    }
    // The limit is on: the /v1 routes run out after the burst of 2.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(rig.call(get("/v1/status/x", Some(&rw()))).await.status);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}
