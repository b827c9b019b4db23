//! The HTTP API through its router: each endpoint's success path and each error it can give,
//! on real SQLite and files, with a real worker.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use secrecy::SecretString;
use thumbd_api::{ApiOptions, Auth, Scope};
use thumbd_jobs::Environment;

const POST: &str = "/v1/thumbnails?thumbnailId=cover&environment=development";
const COVER: &str = "/v1/thumbnails/cover?environment=development";

#[tokio::test]
async fn create_get_head_304_delete() {
    let rig = rig().await;
    let _worker = rig.run_worker();
    let a = rig
        .call(create(POST, Some(&rw()), Some("image/png"), png(800, 600)))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let j = a.json();
    assert_eq!(j["status"], "succeeded");
    assert_eq!(j["thumbnailId"], "cover");
    assert_eq!(j["environment"], "development");
    assert_eq!(j["attempts"], 1);
    assert_eq!(
        (
            j["result"]["width"].as_u64(),
            j["result"]["height"].as_u64()
        ),
        (Some(330), Some(248))
    );
    assert_eq!(j["result"]["contentType"], "image/png");
    assert_eq!(
        j["result"]["url"],
        "/v1/thumbnails/cover?environment=development"
    );
    assert_eq!(
        a.header("location"),
        Some("/v1/thumbnails/cover?environment=development")
    );
    let etag = j["result"]["etag"].as_str().unwrap().to_owned();

    let g = rig.call(get(COVER, Some(&rw()))).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.header("content-type"), Some("image/png"));
    assert_eq!(g.header("etag"), Some(etag.as_str()));
    assert_eq!(g.header("cache-control"), Some("private, no-cache"));
    assert_eq!(
        g.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        g.body.len()
    );
    assert_eq!(&g.body[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(g.body.len() as u64, j["result"]["bytes"].as_u64().unwrap());

    let mut cond = get(COVER, Some(&rw()));
    cond.headers_mut()
        .insert("if-none-match", etag.parse().unwrap());
    let c = rig.call(cond).await;
    assert_eq!(c.status, StatusCode::NOT_MODIFIED);
    assert!(c.body.is_empty());
    assert_eq!(c.header("etag"), Some(etag.as_str()));

    let h = rig.call(head(COVER, Some(&rw()))).await;
    assert_eq!(h.status, StatusCode::OK);
    assert!(h.body.is_empty());
    assert_eq!(h.header("content-length"), g.header("content-length"));

    // The other environment is another namespace.
    let other = rig
        .call(get(
            "/v1/thumbnails/cover?environment=production",
            Some(&rw()),
        ))
        .await;
    assert_eq!(
        (other.status, other.code().as_str()),
        (StatusCode::NOT_FOUND, "ThumbnailNotFound")
    );

    let d = rig.call(delete(COVER, Some(&rw()))).await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    let g = rig.call(get(COVER, Some(&rw()))).await;
    assert_eq!(
        (g.status, g.code().as_str()),
        (StatusCode::NOT_FOUND, "ThumbnailNotFound")
    );
    assert_eq!(
        rig.call(delete(COVER, Some(&rw()))).await.code(),
        "ThumbnailNotFound"
    );
}

#[tokio::test]
async fn respond_async_then_status_life_cycle() {
    let rig = rig().await;
    let mut req = create(POST, Some(&rw()), Some("image/png"), png(400, 400));
    req.headers_mut()
        .insert("prefer", "respond-async".parse().unwrap());
    let a = rig.call(req).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(a.header("preference-applied"), Some("respond-async"));
    let j = a.json();
    assert_eq!(j["status"], "queued");
    assert!(j["startedAt"].is_null() && j["finishedAt"].is_null());
    let location = a.header("location").unwrap().to_owned();
    assert_eq!(
        location,
        format!("/v1/status/{}", j["id"].as_str().unwrap())
    );

    let s = rig.call(get(&location, Some(&rw()))).await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(s.json()["status"], "queued");
    assert_eq!(s.header("retry-after"), Some("1"));

    rig.worker.drain().await;
    let s = rig.call(get(&location, Some(&rw()))).await;
    let j = s.json();
    assert_eq!(j["status"], "succeeded");
    assert!(j["startedAt"].is_string() && j["finishedAt"].is_string());
    assert_eq!(j["result"]["width"], 330);
    assert_eq!(
        s.header("retry-after"),
        None,
        "no Retry-After once finished"
    );
}

#[tokio::test]
async fn prefer_wait_zero_and_default_wait_without_worker() {
    let options = ApiOptions {
        default_wait: Duration::from_millis(300),
        ..ApiOptions::default()
    };
    let rig = rig_with(Auth::hs256(&SecretString::from(SECRET)), options).await;
    // No worker runs: the default wait passes and the answer is 202.
    let started = std::time::Instant::now();
    let a = rig
        .call(create(POST, Some(&rw()), Some("image/png"), png(200, 200)))
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let mut req = create(POST, Some(&rw()), Some("image/png"), png(200, 200));
    req.headers_mut()
        .insert("prefer", "wait=0".parse().unwrap());
    let a = rig.call(req).await;
    assert_eq!(
        (a.status, a.header("preference-applied")),
        (StatusCode::ACCEPTED, Some("wait"))
    );
}

#[tokio::test]
async fn put_path_form_with_any_characters() {
    let rig = rig().await;
    let _worker = rig.run_worker();
    let req = Request::put("/v1/thumbnails/a%2Fb%20c%3F%C3%A9?environment=production")
        .header("authorization", rw())
        .header("content-type", "image/jpg")
        .body(Body::from(jpeg(500, 300)))
        .unwrap();
    let a = rig.call(req).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(a.json()["thumbnailId"], "a/b c?é");
    assert_eq!(
        a.json()["result"]["contentType"],
        "image/png",
        "JPEG input is stored as PNG"
    );
    let url = a.json()["result"]["url"].as_str().unwrap().to_owned();
    assert_eq!(
        url,
        "/v1/thumbnails/a%2Fb%20c%3F%C3%A9?environment=production"
    );
    assert_eq!(
        rig.call(get(&url, Some(&rw()))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn replace_keeps_serving_the_old_until_the_new_succeeds() {
    let rig = rig().await;
    let worker = rig.run_worker();
    let first = rig
        .call(create(POST, Some(&rw()), Some("image/png"), png(600, 300)))
        .await;
    let old_etag = first.json()["result"]["etag"].as_str().unwrap().to_owned();
    worker.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut req = create(POST, Some(&rw()), Some("image/png"), png(300, 600));
    req.headers_mut()
        .insert("prefer", "respond-async".parse().unwrap());
    assert_eq!(rig.call(req).await.status, StatusCode::ACCEPTED);
    let g = rig.call(get(COVER, Some(&rw()))).await;
    assert_eq!(
        g.header("etag"),
        Some(old_etag.as_str()),
        "the old one is served meanwhile"
    );

    rig.worker.drain().await;
    let g = rig.call(get(COVER, Some(&rw()))).await;
    assert_ne!(g.header("etag"), Some(old_etag.as_str()));

    // A replace that fails in the worker keeps the current one.
    let current = g.header("etag").unwrap().to_owned();
    let mut broken = png(300, 300);
    broken.truncate(broken.len() - 200);
    let mut req = create(POST, Some(&rw()), Some("image/png"), broken);
    req.headers_mut()
        .insert("prefer", "respond-async".parse().unwrap());
    let a = rig.call(req).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    rig.worker.drain().await;
    let s = rig
        .call(get(a.header("location").unwrap(), Some(&rw())))
        .await;
    assert_eq!(s.json()["status"], "failed");
    assert_eq!(s.json()["error"]["code"], "CorruptImage");
    let g = rig.call(get(COVER, Some(&rw()))).await;
    assert_eq!(g.header("etag"), Some(current.as_str()));
}

#[tokio::test]
async fn a_job_failing_while_the_request_waits_answers_its_error() {
    let rig = rig().await;
    let _worker = rig.run_worker();
    let mut broken = png(300, 300);
    broken.truncate(broken.len() - 200); // the header is fine; the pixels are not
    let a = rig
        .call(create(POST, Some(&rw()), Some("image/png"), broken))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", a.body);
    assert_eq!(
        (a.code().as_str(), a.detail_code().as_str()),
        ("InvalidThumbnailRequest", "CorruptImage")
    );
}

/// What a request is, and the status, code and detail code it must get.
type Case<'a> = (&'a str, Request<Body>, StatusCode, &'a str, Option<&'a str>);

/// Every synchronous error, one row each.
#[tokio::test]
async fn every_synchronous_error_code() {
    let rig = rig().await;
    let ok = Some(rw());
    let ok = ok.as_deref();
    let read_only = format!("Bearer {}", token(&[Scope::Read], None));
    let prod_only = format!(
        "Bearer {}",
        token(&[Scope::Write, Scope::Read], Some(Environment::Production))
    );
    let other_secret = format!(
        "Bearer {}",
        thumbd_api::mint_hs256(
            &SecretString::from("other"),
            "x",
            &[Scope::Write],
            None,
            Duration::from_secs(60)
        )
    );
    let sign = |claims: serde_json::Value, alg: jsonwebtoken::Algorithm| {
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
        format!(
            "Bearer {}",
            jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key).unwrap()
        )
    };
    let expired = sign(
        serde_json::json!({"exp": 1_000_000_000u64, "scope": "thumbnails:write"}),
        jsonwebtoken::Algorithm::HS256,
    );
    let no_exp = sign(
        serde_json::json!({"scope": "thumbnails:write"}),
        jsonwebtoken::Algorithm::HS256,
    );
    let hs384 = sign(
        serde_json::json!({"exp": 4_102_444_800u64, "scope": "thumbnails:write"}),
        jsonwebtoken::Algorithm::HS384,
    );
    let not_yet = sign(
        serde_json::json!({"exp": 4_102_444_800u64, "nbf": 4_000_000_000u64, "scope": "thumbnails:write"}),
        jsonwebtoken::Algorithm::HS256,
    );
    // An unsigned token ("alg": "none") must be refused: the algorithm is pinned.
    let none_alg = "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjQxMDI0NDQ4MDAsInNjb3BlIjoidGh1bWJuYWlsczp3cml0ZSJ9.";
    let long_id = format!(
        "/v1/thumbnails?thumbnailId={}&environment=development",
        "x".repeat(256)
    );
    let cases: Vec<Case> = vec![
        (
            "no environment",
            create(
                "/v1/thumbnails?thumbnailId=a",
                ok,
                Some("image/png"),
                png(100, 100),
            ),
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameter",
            None,
        ),
        (
            "bad environment",
            create(
                "/v1/thumbnails?thumbnailId=a&environment=staging",
                ok,
                Some("image/png"),
                png(100, 100),
            ),
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameter",
            None,
        ),
        (
            "no thumbnailId",
            create(
                "/v1/thumbnails?environment=development",
                ok,
                Some("image/png"),
                png(100, 100),
            ),
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameter",
            None,
        ),
        (
            "id too long",
            create(&long_id, ok, Some("image/png"), png(100, 100)),
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameter",
            None,
        ),
        (
            "no token",
            create(POST, None, Some("image/png"), png(100, 100)),
            StatusCode::UNAUTHORIZED,
            "HeaderNotFound",
            None,
        ),
        (
            "not bearer",
            create(
                POST,
                Some("Basic dXNlcjpwYXNz"),
                Some("image/png"),
                png(100, 100),
            ),
            StatusCode::UNAUTHORIZED,
            "InvalidToken",
            None,
        ),
        (
            "garbage token",
            create(POST, Some("Bearer nope"), Some("image/png"), png(100, 100)),
            StatusCode::UNAUTHORIZED,
            "InvalidToken",
            None,
        ),
        (
            "wrong secret",
            create(POST, Some(&other_secret), Some("image/png"), png(100, 100)),
            StatusCode::UNAUTHORIZED,
            "InvalidToken",
            None,
        ),
        (
            "expired",
            create(POST, Some(&expired), Some("image/png"), png(100, 100)),
            StatusCode::UNAUTHORIZED,
            "InvalidToken",
            None,
        ),
        (
            "not valid before 2096 (nbf)",
            create(POST, Some(&not_yet), Some("image/png"), png(100, 100)),
            StatusCode::UNAUTHORIZED,
            "InvalidToken",
            None,
        ),
        (
            "no exp",
            create(POST, Some(&no_exp), Some("image/png"), png(100, 100)),
            StatusCode::UNAUTHORIZED,
            "InvalidToken",
            None,
        ),
        (
            "other alg",
            create(POST, Some(&hs384), Some("image/png"), png(100, 100)),
            StatusCode::UNAUTHORIZED,
            "InvalidToken",
            None,
        ),
        (
            "alg none",
            create(POST, Some(none_alg), Some("image/png"), png(100, 100)),
            StatusCode::UNAUTHORIZED,
            "InvalidToken",
            None,
        ),
        (
            "read-only token",
            create(POST, Some(&read_only), Some("image/png"), png(100, 100)),
            StatusCode::FORBIDDEN,
            "InsufficientPermissions",
            None,
        ),
        (
            "other environment",
            create(POST, Some(&prod_only), Some("image/png"), png(100, 100)),
            StatusCode::FORBIDDEN,
            "InsufficientPermissions",
            None,
        ),
        (
            "no content type",
            create(POST, ok, None, png(100, 100)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidThumbnailRequest",
            Some("MissingRequiredHeader"),
        ),
        (
            "gif",
            create(POST, ok, Some("image/gif"), b"GIF89a....".to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidThumbnailRequest",
            Some("InvalidHeaderValue"),
        ),
        (
            "not an image",
            create(POST, ok, Some("image/png"), b"hello world".to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidThumbnailRequest",
            Some("InvalidThumbnailFormat"),
        ),
        (
            "empty",
            create(POST, ok, Some("image/png"), Vec::new()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidThumbnailRequest",
            Some("InvalidThumbnailFormat"),
        ),
        (
            "jpeg declared png",
            create(POST, ok, Some("image/png"), jpeg(100, 100)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidThumbnailRequest",
            Some("InvalidThumbnailFormat"),
        ),
        (
            "too small",
            create(POST, ok, Some("image/png"), png(79, 200)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidThumbnailRequest",
            Some("ThumbnailTooSmall"),
        ),
        (
            "too many pixels",
            create(POST, ok, Some("image/png"), png_header(10_000, 10_000)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidThumbnailRequest",
            Some("ImageDimensionsTooLarge"),
        ),
        (
            "corrupt header",
            create(POST, ok, Some("image/png"), png_header(0, 100)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "InvalidThumbnailRequest",
            Some("CorruptImage"),
        ),
        (
            "too large",
            create(POST, ok, Some("image/png"), vec![0; 5 * 1024 * 1024 + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLarge",
            None,
        ),
        (
            "unknown job",
            get("/v1/status/0192e4a0-0000-7000-8000-000000000000", ok),
            StatusCode::NOT_FOUND,
            "JobNotFound",
            None,
        ),
        (
            "not a job id",
            get("/v1/status/..%2F..%2Fetc", ok),
            StatusCode::NOT_FOUND,
            "JobNotFound",
            None,
        ),
        (
            "unknown thumbnail",
            get("/v1/thumbnails/none?environment=production", ok),
            StatusCode::NOT_FOUND,
            "ThumbnailNotFound",
            None,
        ),
        (
            "get without env",
            get("/v1/thumbnails/none", ok),
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameter",
            None,
        ),
        (
            "read without token",
            get("/v1/thumbnails/none?environment=production", None),
            StatusCode::UNAUTHORIZED,
            "HeaderNotFound",
            None,
        ),
        (
            "status without token",
            get("/v1/status/0192e4a0-0000-7000-8000-000000000000", None),
            StatusCode::UNAUTHORIZED,
            "HeaderNotFound",
            None,
        ),
        (
            "unknown route",
            get("/v2/things", ok),
            StatusCode::NOT_FOUND,
            "RouteNotFound",
            None,
        ),
        (
            "wrong method",
            Request::patch("/v1/thumbnails/x?environment=production")
                .body(Body::empty())
                .unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            None,
        ),
        (
            "malformed query",
            get("/v1/thumbnails/x?environment=%ZZ", ok),
            StatusCode::BAD_REQUEST,
            "InvalidQueryParameter",
            None,
        ),
    ];
    for (what, req, status, code, detail) in cases {
        let a = rig.call(req).await;
        assert_eq!(
            a.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&a.body)
        );
        assert_eq!(a.header("content-type"), Some("application/json"), "{what}");
        assert_eq!(a.code(), code, "{what}");
        if let Some(detail) = detail {
            assert_eq!(a.detail_code(), detail, "{what}");
        }
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(a.header("www-authenticate"), Some("Bearer"), "{what}");
        }
    }
    let a = rig
        .call(create(
            "/v1/thumbnails?environment=x&thumbnailId=a",
            ok,
            Some("image/png"),
            png(100, 100),
        ))
        .await;
    assert_eq!(
        a.json()["error"]["target"],
        "environment",
        "the target names the parameter"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_while_streaming() {
    let rig = rig().await;
    // A chunked body with no Content-Length: refused once the limit is crossed.
    let chunks =
        (0..100).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 64 * 1024])));
    let body = Body::from_stream(futures_stream(chunks));
    let req = Request::post(POST)
        .header("authorization", rw())
        .header("content-type", "image/png")
        .body(body)
        .unwrap();
    let a = rig.call(req).await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLarge")
    );
    // A lying Content-Length is refused before reading.
    let req = Request::post(POST)
        .header("authorization", rw())
        .header("content-type", "image/png")
        .header("content-length", "999999999")
        .body(Body::empty())
        .unwrap();
    assert_eq!(rig.call(req).await.code(), "RequestTooLarge");
}

fn futures_stream<I: Iterator + Send + 'static>(
    iter: I,
) -> impl futures_util::Stream<Item = I::Item> + Send + 'static
where
    I::Item: Send,
{
    futures_util::stream::iter(iter)
}

#[tokio::test]
async fn readiness_is_checked_at_most_once_per_ttl() {
    // Anonymous callers must not turn /readyz into backend traffic: within the TTL the
    // last answer is given again, even after a backend went away.
    let options = ApiOptions {
        readiness_ttl: Duration::from_secs(3600),
        ..ApiOptions::default()
    };
    let rig = rig_with(Auth::hs256(&SecretString::from(SECRET)), options).await;
    let r = rig.call(get("/readyz", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    rig.db.close().await;
    for _ in 0..3 {
        let r = rig.call(get("/readyz", None)).await;
        assert_eq!(r.status, StatusCode::OK, "answered from the last check");
    }
}

#[tokio::test]
async fn health_readiness_and_a_store_that_is_down() {
    let options = ApiOptions {
        readiness_ttl: Duration::ZERO,
        ..ApiOptions::default()
    };
    let rig = rig_with(Auth::hs256(&SecretString::from(SECRET)), options).await;
    let h = rig.call(get("/healthz", None)).await;
    assert_eq!(
        (h.status, h.json()["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let r = rig.call(get("/readyz", None)).await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );

    rig.db.close().await; // the database goes away under the API
    let r = rig.call(get("/readyz", None)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
    );
    assert!(r.header("retry-after").is_some());
    let a = rig
        .call(create(POST, Some(&rw()), Some("image/png"), png(200, 200)))
        .await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable")
    );
    let s = rig
        .call(get(
            "/v1/status/0192e4a0-0000-7000-8000-000000000000",
            Some(&rw()),
        ))
        .await;
    assert_eq!(s.code(), "ServiceUnavailable");
    assert!(
        !String::from_utf8_lossy(&s.body).contains("closed"),
        "no internals in the body"
    );
}

#[tokio::test]
async fn auth_off_and_public_reads() {
    let rig = rig_with(Auth::off(), ApiOptions::default()).await;
    let _worker = rig.run_worker();
    let a = rig
        .call(create(POST, None, Some("image/png"), png(200, 200)))
        .await;
    assert_eq!(a.status, StatusCode::CREATED);

    let public = rig_with(
        Auth::hs256(&SecretString::from(SECRET)).with_public_reads(true),
        ApiOptions::default(),
    )
    .await;
    let g = public
        .call(get("/v1/thumbnails/x?environment=production", None))
        .await;
    assert_eq!(g.code(), "ThumbnailNotFound", "reads need no token");
    let a = public
        .call(create(POST, None, Some("image/png"), png(200, 200)))
        .await;
    assert_eq!(a.code(), "HeaderNotFound", "writes still do");
}

#[tokio::test]
async fn eddsa_tokens_checked_with_a_public_key() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let public = std::fs::read(data.join("ed25519-public.pem")).unwrap();
    let private = std::fs::read(data.join("ed25519-private.pem")).unwrap();
    let auth = Auth::public_key(thumbd_api::PublicKeyAlgorithm::EdDsa, &public).unwrap();
    let rig = rig_with(auth, ApiOptions::default()).await;
    let sign = |alg: jsonwebtoken::Algorithm, key: &jsonwebtoken::EncodingKey| {
        let claims =
            serde_json::json!({"exp": 4_102_444_800u64, "scope": "thumbnails:read", "sub": "k"});
        format!(
            "Bearer {}",
            jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, key).unwrap()
        )
    };
    let good = sign(
        jsonwebtoken::Algorithm::EdDSA,
        &jsonwebtoken::EncodingKey::from_ed_pem(&private).unwrap(),
    );
    let g = rig
        .call(get("/v1/thumbnails/x?environment=production", Some(&good)))
        .await;
    assert_eq!(
        g.code(),
        "ThumbnailNotFound",
        "a valid EdDSA token gets through"
    );
    // An HS256 token "signed" with the public key's bytes: the classic confusion attack.
    let confused = sign(
        jsonwebtoken::Algorithm::HS256,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    );
    let g = rig
        .call(get(
            "/v1/thumbnails/x?environment=production",
            Some(&confused),
        ))
        .await;
    assert_eq!(g.code(), "InvalidToken");
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rig = rig().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let options = thumbd_api::ServeOptions {
        header_read_timeout: Duration::from_millis(300),
        ..thumbd_api::ServeOptions::default()
    };
    let server = tokio::spawn(thumbd_api::serve(
        listener,
        thumbd_api::router(rig.state.clone()),
        options,
        stop.clone(),
    ));
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the server must close a connection that never finishes its headers"
    );

    // A normal request on a fresh connection still works.
    let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    ok.read_to_end(&mut buf).await.unwrap();
    assert!(
        buf.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf)
    );

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
}

/// A blob store that runs the replace waiting in the queue just before it reads the blob of
/// the thumbnail being replaced: the race of a GET with a replace, made certain.
struct ReplaceDuringGet {
    inner: std::sync::Arc<dyn thumbd_jobs::BlobStore>,
    worker: std::sync::Arc<thumbd_worker::Worker>,
    victim: std::sync::Mutex<Option<thumbd_jobs::BlobKey>>,
}

#[async_trait::async_trait]
impl thumbd_jobs::BlobStore for ReplaceDuringGet {
    async fn put(
        &self,
        key: &thumbd_jobs::BlobKey,
        bytes: bytes::Bytes,
    ) -> thumbd_jobs::Result<()> {
        self.inner.put(key, bytes).await
    }
    async fn get(&self, key: &thumbd_jobs::BlobKey) -> thumbd_jobs::Result<Option<bytes::Bytes>> {
        let race = {
            let mut victim = self.victim.lock().unwrap();
            victim.as_ref() == Some(key) && victim.take().is_some()
        };
        if race {
            let outcomes = self.worker.drain().await;
            assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        }
        self.inner.get(key).await
    }
    async fn delete(&self, key: &thumbd_jobs::BlobKey) -> thumbd_jobs::Result<bool> {
        self.inner.delete(key).await
    }
    async fn ping(&self) -> thumbd_jobs::Result<()> {
        self.inner.ping().await
    }
}

#[tokio::test]
async fn a_get_racing_a_replace_serves_the_new_thumbnail_not_a_500() {
    let mut rig = rig().await;
    let mut first = create(POST, Some(&rw()), Some("image/png"), png(400, 300));
    first
        .headers_mut()
        .insert("prefer", "respond-async".parse().unwrap());
    assert_eq!(rig.call(first).await.status, StatusCode::ACCEPTED);
    rig.worker.drain().await;
    let old = rig.call(get(COVER, Some(&rw()))).await;
    assert_eq!(old.status, StatusCode::OK);
    // The replace is queued, not run yet.
    let mut replace = create(POST, Some(&rw()), Some("image/png"), png(300, 400));
    replace
        .headers_mut()
        .insert("prefer", "respond-async".parse().unwrap());
    assert_eq!(rig.call(replace).await.status, StatusCode::ACCEPTED);

    let store = rig.state.store.clone();
    let current = store
        .thumbnail(
            &thumbd_jobs::Namespace::default_tenant(Environment::Development),
            &thumbd_jobs::ThumbnailId::parse("cover").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    rig.state.blobs = std::sync::Arc::new(ReplaceDuringGet {
        inner: rig.state.blobs.clone(),
        worker: rig.worker.clone(),
        victim: std::sync::Mutex::new(Some(current.result.blob_key)),
    });
    let new = rig.call(get(COVER, Some(&rw()))).await;
    assert_eq!(new.status, StatusCode::OK, "{:?}", new.body);
    assert_ne!(new.body, old.body, "the replacement is served");
    assert_ne!(new.header("etag"), old.header("etag"));
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let auth = Auth::hs256(&SecretString::from(SECRET))
        .with_issuer_and_audience(Some("https://auth.example"), Some("thumbd"));
    let rig = rig_with(auth, ApiOptions::default()).await;
    let with = |iss: Option<&str>, aud: Option<serde_json::Value>| {
        let mut claims =
            thumbd_api::Claims::new("tester", &[Scope::Read], None, Duration::from_secs(60));
        claims.iss = iss.map(Into::into);
        claims.aud = aud;
        let token = thumbd_api::mint_hs256_claims(&SecretString::from(SECRET), &claims);
        get(COVER, Some(&format!("Bearer {token}")))
    };
    for (name, request, code) in [
        (
            "both right",
            with(Some("https://auth.example"), Some("thumbd".into())),
            "ThumbnailNotFound",
        ),
        (
            "audience in a list",
            with(
                Some("https://auth.example"),
                Some(serde_json::json!(["other", "thumbd"])),
            ),
            "ThumbnailNotFound",
        ),
        (
            "no issuer",
            with(None, Some("thumbd".into())),
            "InvalidToken",
        ),
        (
            "other issuer",
            with(Some("https://evil.example"), Some("thumbd".into())),
            "InvalidToken",
        ),
        (
            "no audience",
            with(Some("https://auth.example"), None),
            "InvalidToken",
        ),
        (
            "other audience",
            with(Some("https://auth.example"), Some("other".into())),
            "InvalidToken",
        ),
    ] {
        assert_eq!(rig.call(request).await.code(), code, "{name}");
    }
    // Unconfigured, neither claim matters.
    let plain = rig_with(
        Auth::hs256(&SecretString::from(SECRET)),
        ApiOptions::default(),
    )
    .await;
    assert_eq!(
        plain
            .call(with(Some("https://evil.example"), Some("other".into())))
            .await
            .code(),
        "ThumbnailNotFound"
    );
}

/// GIF input is opt-in (`accept_formats`): refused by default exactly like any unsupported
/// type; accepted when configured, with `animated` in the result of the 201 and of the
/// status (absent for a still image).
#[tokio::test]
async fn gif_is_refused_by_default_and_accepted_when_configured() {
    let animated = gif(200, 150, 3);
    let rig = rig().await;
    let _worker = rig.run_worker();
    let a = rig
        .call(create(
            POST,
            Some(&rw()),
            Some("image/gif"),
            animated.clone(),
        ))
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        (a.code(), a.detail_code()),
        (
            "InvalidThumbnailRequest".into(),
            "InvalidHeaderValue".into()
        )
    );
    let a = rig
        .call(create(
            POST,
            Some(&rw()),
            Some("image/png"),
            animated.clone(),
        ))
        .await;
    assert_eq!(a.detail_code(), "InvalidThumbnailFormat");

    let rig = rig_accepting("png,jpeg,gif").await;
    let _worker = rig.run_worker();
    let a = rig
        .call(create(POST, Some(&rw()), Some("image/gif"), animated))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let j = a.json();
    assert_eq!(j["result"]["animated"], true);
    assert_eq!(j["result"]["contentType"], "image/png");
    assert_eq!(
        (
            j["result"]["width"].as_u64(),
            j["result"]["height"].as_u64()
        ),
        (Some(200), Some(150))
    );
    let status = format!("/v1/status/{}", j["id"].as_str().unwrap());
    let s = rig.call(get(&status, Some(&rw()))).await.json();
    assert_eq!(s["result"]["animated"], true);
    // The first frame (red), not a later one.
    let t = rig.call(get(COVER, Some(&rw()))).await;
    let mut reader = png::Decoder::new(std::io::Cursor::new(&t.body[..]))
        .read_info()
        .unwrap();
    let mut px = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut px).unwrap();
    assert_eq!(&px[..3], &[255, 0, 0]);

    // A still GIF, and a PNG: no `animated` at all.
    for (ct, body) in [
        ("image/gif", gif(200, 150, 1)),
        ("image/png", png(200, 150)),
    ] {
        let j = rig
            .call(create(POST, Some(&rw()), Some(ct), body))
            .await
            .json();
        assert_eq!(j["status"], "succeeded", "{ct}");
        assert!(j["result"].get("animated").is_none(), "{ct}: {j}");
    }
    // WebP is still refused: only what is named is accepted.
    let a = rig
        .call(create(
            POST,
            Some(&rw()),
            Some("image/webp"),
            b"RIFF\0\0\0\0WEBPVP8L".to_vec(),
        ))
        .await;
    assert_eq!(a.detail_code(), "InvalidHeaderValue");
}

/// A result carries its placeholder: a ThumbHash, a 4×3 BlurHash (28 characters) and the
/// average colour, in the 201 body and in the status.
#[tokio::test]
async fn results_carry_a_placeholder() {
    let rig = rig().await;
    let _worker = rig.run_worker();
    let created = rig
        .call(create(
            "/v1/thumbnails?thumbnailId=painted&environment=production",
            Some(&rw()),
            Some("image/png"),
            png(400, 200),
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let j = created.json();
    let placeholder = &j["result"]["placeholder"];
    let thumbhash = placeholder["thumbhash"].as_str().unwrap();
    assert!(
        thumbhash.len() >= 8
            && thumbhash
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
        "{thumbhash}"
    );
    assert_eq!(placeholder["blurhash"].as_str().unwrap().len(), 28);
    let colour = placeholder["averageColor"].as_str().unwrap();
    assert!(
        colour.len() == 7
            && colour.starts_with('#')
            && colour[1..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{colour}"
    );
    let status = rig
        .call(get(
            &format!("/v1/status/{}", j["id"].as_str().unwrap()),
            Some(&rw()),
        ))
        .await;
    assert_eq!(status.json()["result"]["placeholder"], *placeholder);
}
