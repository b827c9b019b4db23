//! Uploads, contexts, idempotency keys, rate limits and metrics, over real HTTP on loopback
//! (`thumbd_api::serve` on a random port), with real SQLite, files and a worker.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use thumbd_api::RateLimit;

/// A `multipart/form-data` body with one part per `(name, content type, bytes)`.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "thumbd-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, content_type, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"x\"\r\n")
                .as_bytes(),
        );
        if let Some(ct) = content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// `PUT` of a PNG (the path form of create), with read-write rights.
fn put_image(uri: &str, png: Vec<u8>) -> Request<Body> {
    let mut r = create(uri, Some(&rw()), Some("image/png"), png);
    *r.method_mut() = axum::http::Method::PUT;
    r
}

fn json(method: &str, uri: &str, auth: Option<&str>, body: &str) -> Request<Body> {
    let mut r = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn upload_tickets_binary_and_multipart_then_synchronous_creates() {
    let rig = rig().await;
    let _worker = rig.run_worker();
    let base = rig.serve_http().await;

    // Binary upload.
    let a = rig
        .http(
            &base,
            create("/v1/uploads", Some(&rw()), Some("image/png"), png(500, 400)),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let j = a.json();
    let ticket = j["uploadTicket"].as_str().unwrap().to_owned();
    assert!(ticket.starts_with("up_"), "{ticket}");
    assert_eq!(j["url"], format!("/v1/uploads/{ticket}"));
    assert_eq!(a.header("location"), Some(j["url"].as_str().unwrap()));
    assert_eq!(j["contentType"], "image/png");
    assert!(j["expiresAt"].as_str().unwrap().ends_with('Z'));
    let g = rig
        .http(&base, get(&format!("/v1/uploads/{ticket}"), Some(&rw())))
        .await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.json()["uploadTicket"], ticket.as_str());

    // Multipart upload (part type sniffed when it is octet-stream), other fields ignored.
    let (ct, body) = multipart(&[
        ("note", Some("text/plain"), b"hello"),
        ("file", Some("application/octet-stream"), &jpeg(640, 480)),
    ]);
    let m = rig
        .http(&base, create("/v1/uploads", Some(&rw()), Some(&ct), body))
        .await;
    assert_eq!(m.status, StatusCode::CREATED, "{:?}", m.body);
    assert_eq!(m.json()["contentType"], "image/jpeg");
    let jpeg_ticket = m.json()["uploadTicket"].as_str().unwrap().to_owned();

    // A create from a ticket is synchronous: 201 with the thumbnail, even though the
    // default wait would allow 202.
    for (id, t, size) in [
        ("from-png", &ticket, (330, 264)),
        ("from-jpeg", &jpeg_ticket, (330, 248)),
    ] {
        let c = rig
            .http(
                &base,
                json(
                    "PUT",
                    &format!("/v1/thumbnails/{id}?environment=production"),
                    Some(&rw()),
                    &format!(r#"{{"uploadTicket": "{t}"}}"#),
                ),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
        let r = &c.json()["result"];
        assert_eq!(
            (r["width"].as_u64(), r["height"].as_u64()),
            (Some(size.0), Some(size.1))
        );
        let thumb = rig
            .http(
                &base,
                get(
                    &format!("/v1/thumbnails/{id}?environment=production"),
                    Some(&rw()),
                ),
            )
            .await;
        assert_eq!(thumb.status, StatusCode::OK);
    }
    // A ticket may be used again until it expires (each create copies the original).
    let again = rig
        .http(
            &base,
            json(
                "POST",
                "/v1/thumbnails?thumbnailId=again&environment=development",
                Some(&rw()),
                &format!(r#"{{"uploadTicket": "{ticket}"}}"#),
            ),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{:?}", again.body);

    // Unknown and malformed tickets.
    for t in ["up_00000000000000000000000000000000", "nonsense", ""] {
        let c = rig
            .http(
                &base,
                json(
                    "PUT",
                    "/v1/thumbnails/x?environment=production",
                    Some(&rw()),
                    &format!(r#"{{"uploadTicket": "{t}"}}"#),
                ),
            )
            .await;
        assert_eq!(
            (c.status, c.code().as_str()),
            (StatusCode::NOT_FOUND, "UploadTicketNotFound"),
            "{t}"
        );
    }
    let g = rig
        .http(
            &base,
            get(
                "/v1/uploads/up_00000000000000000000000000000000",
                Some(&rw()),
            ),
        )
        .await;
    assert_eq!(g.code(), "UploadTicketNotFound");
}

#[tokio::test]
async fn upload_errors() {
    let rig = rig().await;
    let base = rig.serve_http().await;
    let post = |ct: Option<&str>, body: Vec<u8>| create("/v1/uploads", Some(&rw()), ct, body);

    let a = rig
        .http(&base, post(Some("image/png"), b"GIF89a not a png".to_vec()))
        .await;
    assert_eq!(
        (a.status, a.detail_code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "InvalidThumbnailFormat")
    );
    let a = rig.http(&base, post(Some("image/png"), png(40, 40))).await;
    assert_eq!(a.detail_code(), "ThumbnailTooSmall");
    let a = rig
        .http(&base, post(Some("image/gif"), png(100, 100)))
        .await;
    assert_eq!(a.detail_code(), "InvalidHeaderValue");
    let a = rig
        .http(&base, post(Some("application/json"), b"{}".to_vec()))
        .await;
    assert_eq!(a.detail_code(), "InvalidHeaderValue");
    let a = rig.http(&base, post(None, png(100, 100))).await;
    assert_eq!(a.detail_code(), "MissingRequiredHeader");
    let a = rig
        .http(
            &base,
            create("/v1/uploads", None, Some("image/png"), png(100, 100)),
        )
        .await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::UNAUTHORIZED, "HeaderNotFound")
    );
    let read_only = format!("Bearer {}", token(&[thumbd_api::Scope::Read], None));
    let a = rig
        .http(
            &base,
            create(
                "/v1/uploads",
                Some(&read_only),
                Some("image/png"),
                png(100, 100),
            ),
        )
        .await;
    assert_eq!(a.code(), "InsufficientPermissions");

    // Multipart: no `file` field; a part that is not an image; a malformed body; too large.
    let (ct, body) = multipart(&[("other", Some("image/png"), &png(100, 100))]);
    let a = rig.http(&base, post(Some(&ct), body)).await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::BAD_REQUEST, "InvalidRequestBody")
    );
    let (ct, body) = multipart(&[("file", None, b"plain text")]);
    assert_eq!(
        rig.http(&base, post(Some(&ct), body)).await.detail_code(),
        "InvalidThumbnailFormat"
    );
    let (ct, body) = multipart(&[("file", Some("image/gif"), b"GIF89a")]);
    assert_eq!(
        rig.http(&base, post(Some(&ct), body)).await.detail_code(),
        "InvalidHeaderValue"
    );
    let a = rig
        .http(
            &base,
            post(
                Some("multipart/form-data; boundary=zzz"),
                b"--zzz\r\nbroken".to_vec(),
            ),
        )
        .await;
    assert_eq!(a.code(), "InvalidRequestBody");
    let a = rig
        .http(&base, post(Some("multipart/form-data"), b"x".to_vec()))
        .await;
    assert_eq!(a.detail_code(), "InvalidHeaderValue");
    let huge = vec![0u8; 5 * 1024 * 1024 + 1];
    let (ct, body) = multipart(&[("file", Some("image/png"), &huge)]);
    let a = rig.http(&base, post(Some(&ct), body)).await;
    assert_eq!(
        (a.status, a.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLarge")
    );
}

#[tokio::test]
async fn expired_uploads_are_unknown() {
    let rig = rig_with(
        thumbd_api::Auth::off(),
        thumbd_api::ApiOptions {
            upload_ttl: Duration::from_millis(300),
            ..thumbd_api::ApiOptions::default()
        },
    )
    .await;
    let base = rig.serve_http().await;
    let a = rig
        .http(
            &base,
            create("/v1/uploads", None, Some("image/png"), png(100, 100)),
        )
        .await;
    let ticket = a.json()["uploadTicket"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let c = rig
        .http(
            &base,
            json(
                "PUT",
                "/v1/thumbnails/x?environment=production",
                None,
                &format!(r#"{{"uploadTicket":"{ticket}"}}"#),
            ),
        )
        .await;
    assert_eq!(c.code(), "UploadTicketNotFound");
    // The purge removes the record and the store hands back the blob key to delete.
    let purged = rig
        .state
        .store
        .purge_expired_uploads(thumbd_jobs::Timestamp::now(), 10)
        .await
        .unwrap();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].ticket.as_str(), ticket);
}

#[tokio::test]
async fn json_bodies_are_checked() {
    let rig = rig().await;
    let base = rig.serve_http().await;
    let put = |body: &str| {
        json(
            "PUT",
            "/v1/thumbnails/x?environment=production",
            Some(&rw()),
            body,
        )
    };
    for (body, target) in [
        ("{not json", "body"),
        ("[1, 2]", "body"),
        ("{}", "body"),
        (
            r#"{"url": "https://a.example/x.png", "uploadTicket": "up_x"}"#,
            "body",
        ),
        (r#"{"uri": "https://a.example/x.png"}"#, "body"),
        (r#"{"url": 42}"#, "url"),
        (r#"{"url": "not a url"}"#, "url"),
        (r#"{"url": "ftp://a.example/x.png"}"#, "url"),
        (r#"{"url": "file:///etc/passwd"}"#, "url"),
        (r#"{"url": "https://user:pw@a.example/x.png"}"#, "url"),
    ] {
        let a = rig.http(&base, put(body)).await;
        assert_eq!(
            (a.status, a.code().as_str()),
            (StatusCode::BAD_REQUEST, "InvalidRequestBody"),
            "{body}"
        );
        assert_eq!(a.json()["error"]["target"], target, "{body}");
    }
    let big = format!(r#"{{"url": "https://a.example/{}"}}"#, "x".repeat(70_000));
    assert_eq!(rig.http(&base, put(&big)).await.code(), "RequestTooLarge");
}

#[tokio::test]
async fn a_url_source_is_queued_and_answered_202() {
    let rig = rig().await;
    let base = rig.serve_http().await;
    let a = rig
        .http(
            &base,
            json(
                "PUT",
                "/v1/thumbnails/remote?environment=production",
                Some(&rw()),
                r#"{"url": "https://images.example/cover.png"}"#,
            ),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
    assert_eq!(a.json()["status"], "queued");
    assert!(a.header("location").unwrap().starts_with("/v1/status/"));
}

#[tokio::test]
async fn contexts_reference_thumbnails_and_the_last_reference_deletes_it() {
    let rig = rig().await;
    let _worker = rig.run_worker();
    let base = rig.serve_http().await;
    let make = |id: &str| {
        put_image(
            &format!("/v1/thumbnails/{id}?environment=development"),
            png(200, 200),
        )
    };
    for id in ["shared", "other"] {
        assert_eq!(rig.http(&base, make(id)).await.status, StatusCode::CREATED);
    }
    let ctx = |id: &str| format!("/v1/contexts/{id}?environment=development");
    let put_ctx = |id: &str, body: &str| json("PUT", &ctx(id), Some(&rw()), body);
    let thumb_status = |id: &str| {
        get(
            &format!("/v1/thumbnails/{id}?environment=development"),
            Some(&rw()),
        )
    };

    let a = rig
        .http(
            &base,
            put_ctx(
                "lesson%201%2Fa",
                r#"{"thumbnailId": "shared", "title": "Lesson 1", "contextId": "ignored"}"#,
            ),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let j = a.json();
    assert_eq!(
        (
            j["contextId"].as_str(),
            j["thumbnailId"].as_str(),
            j["title"].as_str()
        ),
        (Some("lesson 1/a"), Some("shared"), Some("Lesson 1"))
    );
    assert_eq!(j["environment"], "development");
    let created_at = j["createdAt"].as_str().unwrap().to_owned();
    let b = rig
        .http(&base, put_ctx("lesson-2", r#"{"thumbnailId": "shared"}"#))
        .await;
    assert_eq!(b.status, StatusCode::CREATED);

    // Replacing keeps createdAt; GET returns what was stored.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = rig
        .http(
            &base,
            put_ctx(
                "lesson%201%2Fa",
                r#"{"thumbnailId": "shared", "title": "Lesson One"}"#,
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let g = rig
        .http(&base, get(&ctx("lesson%201%2Fa"), Some(&rw())))
        .await;
    assert_eq!(g.status, StatusCode::OK, "{:?}", g.body);
    assert_eq!(g.json()["title"], "Lesson One");
    assert_eq!(g.json()["createdAt"].as_str(), Some(created_at.as_str()));
    assert_ne!(g.json()["updatedAt"].as_str(), Some(created_at.as_str()));
    // Per environment.
    let other_env = rig
        .http(
            &base,
            get("/v1/contexts/lesson-2?environment=production", Some(&rw())),
        )
        .await;
    assert_eq!(
        (other_env.status, other_env.code().as_str()),
        (StatusCode::NOT_FOUND, "ContextNotFound")
    );

    // Deleting one of two references keeps the thumbnail; the last one deletes it.
    assert_eq!(
        rig.http(&base, delete(&ctx("lesson-2"), Some(&rw())))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        rig.http(&base, thumb_status("shared")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        rig.http(&base, delete(&ctx("lesson-2"), Some(&rw())))
            .await
            .code(),
        "ContextNotFound"
    );
    // Re-pointing the last reference deletes the old thumbnail.
    let p = rig
        .http(
            &base,
            put_ctx("lesson%201%2Fa", r#"{"thumbnailId": "other"}"#),
        )
        .await;
    assert_eq!(p.status, StatusCode::OK);
    let gone = rig.http(&base, thumb_status("shared")).await;
    assert_eq!(gone.code(), "ThumbnailNotFound");
    assert_eq!(
        rig.http(&base, thumb_status("other")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        rig.http(&base, delete(&ctx("lesson%201%2Fa"), Some(&rw())))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        rig.http(&base, thumb_status("other")).await.code(),
        "ThumbnailNotFound"
    );
    // Their bytes are gone too: nothing left under thumbnails/.
    let left = walk(&rig.dir.path().join("blobs"));
    assert!(left.iter().all(|p| !p.contains("thumbnails/")), "{left:?}");

    // Errors.
    for (body, code) in [
        ("{}", "InvalidRequestBody"),
        (r#"{"thumbnailId": 7}"#, "InvalidRequestBody"),
        (r#"{"thumbnailId": ""}"#, "InvalidRequestBody"),
        ("nope", "InvalidRequestBody"),
    ] {
        let e = rig.http(&base, put_ctx("bad", body)).await;
        assert_eq!(
            (e.status, e.code().as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{body}"
        );
    }
    let mut wrong_type = put_ctx("bad", r#"{"thumbnailId": "x"}"#);
    wrong_type
        .headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    assert_eq!(
        rig.http(&base, wrong_type).await.detail_code(),
        "InvalidHeaderValue"
    );
    let no_env = rig.http(&base, get("/v1/contexts/x", Some(&rw()))).await;
    assert_eq!(no_env.code(), "InvalidQueryParameter");
    let prod_only = format!(
        "Bearer {}",
        token(
            &[thumbd_api::Scope::Read, thumbd_api::Scope::Write],
            Some(thumbd_jobs::Environment::Production)
        )
    );
    let e = rig
        .http(
            &base,
            json(
                "PUT",
                &ctx("x"),
                Some(&prod_only),
                r#"{"thumbnailId": "x"}"#,
            ),
        )
        .await;
    assert_eq!(e.code(), "InsufficientPermissions");
}

/// Every file under `dir`, as paths relative to it.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn concurrent_context_deletes_delete_the_shared_thumbnail_once() {
    let rig = rig().await;
    let _worker = rig.run_worker();
    let base = rig.serve_http().await;
    for round in 0..5 {
        let thumb = format!("t{round}");
        let c = rig
            .http(
                &base,
                put_image(
                    &format!("/v1/thumbnails/{thumb}?environment=development"),
                    png(100, 100),
                ),
            )
            .await;
        assert_eq!(c.status, StatusCode::CREATED);
        for n in 0..4 {
            let p = rig
                .http(
                    &base,
                    json(
                        "PUT",
                        &format!("/v1/contexts/c{round}-{n}?environment=development"),
                        Some(&rw()),
                        &format!(r#"{{"thumbnailId":"{thumb}"}}"#),
                    ),
                )
                .await;
            assert_eq!(p.status, StatusCode::CREATED);
        }
        let deletes = (0..4).map(|n| {
            let uri = format!("/v1/contexts/c{round}-{n}?environment=development");
            let rig = &rig;
            let base = &base;
            async move { rig.http(base, delete(&uri, Some(&rw()))).await.status }
        });
        let statuses = futures_util::future::join_all(deletes).await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::NO_CONTENT),
            "{statuses:?}"
        );
        let g = rig
            .http(
                &base,
                get(
                    &format!("/v1/thumbnails/{thumb}?environment=development"),
                    Some(&rw()),
                ),
            )
            .await;
        assert_eq!(
            g.code(),
            "ThumbnailNotFound",
            "round {round}: the thumbnail leaked"
        );
    }
}

#[tokio::test]
async fn idempotency_keys_return_the_first_job() {
    let rig = rig().await;
    let base = rig.serve_http().await;
    let with_key = |key: &str, env: &str, auth: &str| {
        let mut r = create(
            &format!("/v1/thumbnails?thumbnailId=idem&environment={env}"),
            Some(auth),
            Some("image/png"),
            png(120, 120),
        );
        r.headers_mut()
            .insert("idempotency-key", key.parse().unwrap());
        r.headers_mut()
            .insert("prefer", "respond-async".parse().unwrap());
        r
    };
    let first = rig.http(&base, with_key("k-1", "development", &rw())).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let job = first.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = rig.http(&base, with_key("k-1", "development", &rw())).await;
    assert_eq!(
        again.json()["id"].as_str(),
        Some(job.as_str()),
        "same key: the first job"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // Another key, another environment, another client: new jobs.
    let other = rig.http(&base, with_key("k-2", "development", &rw())).await;
    assert_ne!(other.json()["id"].as_str(), Some(job.as_str()));
    let prod = rig.http(&base, with_key("k-1", "production", &rw())).await;
    assert_ne!(prod.json()["id"].as_str(), Some(job.as_str()));
    let someone_else = format!(
        "Bearer {}",
        thumbd_api::mint_hs256(
            &secrecy::SecretString::from(SECRET),
            "another-client",
            &[thumbd_api::Scope::Write],
            None,
            Duration::from_secs(60)
        )
    );
    let theirs = rig
        .http(&base, with_key("k-1", "development", &someone_else))
        .await;
    assert_ne!(theirs.json()["id"].as_str(), Some(job.as_str()));

    // Concurrent first requests with one key: one job.
    let racing = (0..6).map(|_| {
        let rig = &rig;
        let base = &base;
        async move {
            rig.http(base, with_key("race", "development", &rw()))
                .await
                .json()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    });
    let ids = futures_util::future::join_all(racing).await;
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");

    // The replay answers as the job stands now.
    rig.worker.drain().await;
    let mut done = with_key("k-1", "development", &rw());
    done.headers_mut().remove("prefer");
    let done = rig.http(&base, done).await;
    assert_eq!(done.status, StatusCode::CREATED);
    assert_eq!(done.json()["id"].as_str(), Some(job.as_str()));

    // The same key for another thumbnail is the client's mistake, not a replay.
    let mut other_thumb = create(
        "/v1/thumbnails?thumbnailId=not-idem&environment=development",
        Some(&rw()),
        Some("image/png"),
        png(120, 120),
    );
    other_thumb
        .headers_mut()
        .insert("idempotency-key", "k-1".parse().unwrap());
    let mismatch = rig.http(&base, other_thumb).await;
    assert_eq!(
        (mismatch.status, mismatch.detail_code().as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, "InvalidHeaderValue")
    );
    assert_eq!(
        mismatch.json()["error"]["details"][0]["target"],
        "idempotency-key"
    );

    let mut bad = with_key("x", "development", &rw());
    bad.headers_mut()
        .insert("idempotency-key", "k".repeat(256).parse().unwrap());
    assert_eq!(
        rig.http(&base, bad).await.detail_code(),
        "InvalidHeaderValue"
    );
}

#[tokio::test]
async fn rate_limit_per_client_hit_and_recovered() {
    let mut rig = rig().await;
    rig.state.rate_limit = Arc::new(RateLimit::per_second(2));
    let base = rig.serve_http().await;
    let status = |auth: String| {
        get(
            "/v1/status/0192e4a0-0000-7000-8000-000000000000",
            Some(&auth),
        )
        .into_parts()
    };
    let send = |auth: &str| {
        let (parts, _) = status(auth.to_owned());
        Request::from_parts(parts, Body::empty())
    };
    // A burst of twice the rate, then 429 with Retry-After.
    for _ in 0..4 {
        assert_eq!(rig.http(&base, send(&rw())).await.code(), "JobNotFound");
    }
    let limited = rig.http(&base, send(&rw())).await;
    assert_eq!(
        (limited.status, limited.code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests")
    );
    assert_eq!(limited.header("retry-after"), Some("1"));
    // Another subject has its own allowance; health checks are never limited.
    let other = format!(
        "Bearer {}",
        thumbd_api::mint_hs256(
            &secrecy::SecretString::from(SECRET),
            "other",
            &[thumbd_api::Scope::Read],
            None,
            Duration::from_secs(60)
        )
    );
    assert_eq!(rig.http(&base, send(&other)).await.code(), "JobNotFound");
    // So has the same subject in another tenant.
    let mut claims = thumbd_api::Claims::new(
        "tester",
        &[thumbd_api::Scope::Read],
        None,
        Duration::from_secs(60),
    );
    claims.other.insert("tenant".into(), "acme".into());
    let same_subject_other_tenant = format!(
        "Bearer {}",
        thumbd_api::mint_hs256_claims(&secrecy::SecretString::from(SECRET), &claims)
    );
    assert_eq!(
        rig.http(&base, send(&same_subject_other_tenant))
            .await
            .code(),
        "JobNotFound"
    );
    assert_eq!(
        rig.http(&base, get("/healthz", None)).await.status,
        StatusCode::OK
    );
    // Without a valid token, the peer address is the client.
    for _ in 0..4 {
        rig.http(&base, send("Bearer nonsense")).await;
    }
    assert_eq!(
        rig.http(&base, send("Bearer nonsense")).await.code(),
        "TooManyRequests"
    );
    // Recovered after a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(rig.http(&base, send(&rw())).await.code(), "JobNotFound");
}

#[tokio::test]
async fn metrics_move_when_requests_are_made() {
    let rig = rig().await;
    let _worker = rig.run_worker();
    let base = rig.serve_http().await;
    let scrape = || async {
        let m = rig.http(&base, get("/metrics", None)).await;
        assert_eq!(m.status, StatusCode::OK);
        assert!(
            m.header("content-type")
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        String::from_utf8(m.body.to_vec()).unwrap()
    };
    let before = scrape().await;
    let c = rig
        .http(
            &base,
            put_image("/v1/thumbnails/m?environment=development", png(300, 300)),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED);
    let g = rig
        .http(
            &base,
            get("/v1/thumbnails/m?environment=development", Some(&rw())),
        )
        .await;
    rig.http(&base, get("/v1/nowhere", None)).await;
    let mut odd = get("/v1/nowhere", None);
    *odd.method_mut() = axum::http::Method::from_bytes(b"FOO1").unwrap();
    rig.call(odd).await; // (not through ureq, which sends only standard methods)
    let after = scrape().await;

    let value = |text: &str, series: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or(0.0)
    };
    let created =
        r#"thumbd_http_requests_total{route="/v1/thumbnails/{id}",method="PUT",status="201"}"#;
    assert_eq!(value(&before, created), 0.0);
    assert_eq!(value(&after, created), 1.0, "{after}");
    assert_eq!(
        value(&after, r#"thumbd_jobs_accepted_total{source="image"}"#),
        1.0
    );
    assert_eq!(
        value(&after, "thumbd_served_bytes_total"),
        g.body.len() as f64
    );
    assert!(value(&after, "thumbd_received_bytes_total") > 0.0);
    assert!(
        value(
            &after,
            r#"thumbd_http_request_duration_seconds_count{route="/v1/thumbnails/{id}",method="PUT"}"#
        ) >= 1.0
    );
    assert_eq!(
        value(&after, r#"thumbd_queue_messages{state="ready"}"#),
        0.0
    );
    assert!(
        after
            .contains(r#"thumbd_http_requests_total{route="unmatched",method="GET",status="404"}"#),
        "{after}"
    );
    assert!(
        after.contains(
            r#"thumbd_http_requests_total{route="unmatched",method="OTHER",status="404"}"#
        ),
        "{after}"
    );
    assert!(!after.contains("FOO1"), "{after}");
    assert!(
        after
            .lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| l.starts_with("thumbd_") || l.starts_with("process_")),
        "{after}"
    );
    let version = format!(
        r#"thumbd_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&after, &version), 1.0, "{after}");
    // This process's own readings: it has spent CPU, holds memory and files, started lately.
    assert!(value(&after, "process_cpu_seconds_total") > 0.0, "{after}");
    assert!(
        value(&after, "process_resident_memory_bytes") > 1e6,
        "{after}"
    );
    assert!(value(&after, "process_open_fds") >= 3.0, "{after}");
    let started = value(&after, "process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(started > now - 3600.0 && started <= now + 1.0, "{after}");
    assert!(after.ends_with("# EOF\n"), "{after}");

    // A scraper that prefers Prometheus' text format gets it: no EOF, counters named with
    // `_total`, everything else alike.
    let mut ask = get("/metrics", None);
    ask.headers_mut().insert(
        "accept",
        "text/plain;version=0.0.4;q=0.9,*/*;q=0.1".parse().unwrap(),
    );
    let text = rig.http(&base, ask).await;
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(text.body.to_vec()).unwrap();
    assert!(!text.contains("# EOF"), "{text}");
    assert!(
        text.contains("# TYPE thumbd_http_requests_total counter\n"),
        "{text}"
    );
    assert_eq!(value(&text, &version), 1.0, "{text}");
}

#[tokio::test]
async fn accepted_jobs_are_marked_published_in_the_background() {
    let rig = rig().await;
    let base = rig.serve_http().await;
    // Answered at once, and after waiting in vain (no worker runs here): a waiting create's
    // job is marked when it is answered unfinished.
    for (n, prefer) in ["respond-async", "wait=1"]
        .iter()
        .cycle()
        .take(6)
        .enumerate()
    {
        let mut r = put_image(
            &format!("/v1/thumbnails/p{n}?environment=development"),
            png(100, 100),
        );
        r.headers_mut().insert("prefer", prefer.parse().unwrap());
        assert_eq!(rig.http(&base, r).await.status, StatusCode::ACCEPTED);
    }
    let later = thumbd_jobs::Timestamp::now().plus(Duration::from_secs(60));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left = rig.state.store.unpublished_jobs(later, 10).await.unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} jobs never marked published: the sweeper would publish them twice",
            left.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// With GIF accepted, an upload may be a GIF (declared, or sniffed in a multipart part),
/// and a create from its ticket reports `animated`.
#[tokio::test]
async fn a_gif_upload_when_accepted_then_a_create_from_its_ticket() {
    let rig = rig_accepting("png,jpeg,gif").await;
    let _worker = rig.run_worker();
    let base = rig.serve_http().await;
    let (ct, body) = multipart(&[("file", Some("application/octet-stream"), &gif(160, 120, 2))]);
    let up = rig
        .http(&base, create("/v1/uploads", Some(&rw()), Some(&ct), body))
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{:?}", up.body);
    assert_eq!(up.json()["contentType"], "image/gif");
    let ticket = up.json()["uploadTicket"].as_str().unwrap().to_owned();
    let c = rig
        .http(
            &base,
            json(
                "PUT",
                "/v1/thumbnails/from-gif?environment=production",
                Some(&rw()),
                &format!(r#"{{"uploadTicket": "{ticket}"}}"#),
            ),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{:?}", c.body);
    assert_eq!(c.json()["result"]["animated"], true);
    // WebP is not accepted here: its part type is refused as before.
    let (ct, body) = multipart(&[("file", Some("image/webp"), b"RIFF\0\0\0\0WEBPVP8L")]);
    assert_eq!(
        rig.http(&base, create("/v1/uploads", Some(&rw()), Some(&ct), body))
            .await
            .detail_code(),
        "InvalidHeaderValue"
    );
}
