//! `GET /v1/thumbnails` and `GET /v1/jobs` through the router: pages that cover every item
//! once, filters, cursors that are checked, tokens always required, tenants apart.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use secrecy::SecretString;
use thumbd_api::{ApiOptions, Auth, Claims, Scope, mint_hs256_claims};

fn post(id: &str) -> String {
    format!("/v1/thumbnails?thumbnailId={id}&environment=production")
}

fn tenant(name: &str) -> String {
    let mut claims = Claims::new(
        "lister",
        &[Scope::Read, Scope::Write],
        None,
        Duration::from_secs(600),
    );
    claims.other.insert("tenant".into(), name.into());
    format!(
        "Bearer {}",
        mint_hs256_claims(&SecretString::from(SECRET), &claims)
    )
}

/// Every page of `first` (a listing URL without cursor), following `nextCursor`.
async fn pages(rig: &Rig, first: &str, auth: &str) -> Vec<serde_json::Value> {
    let mut items = Vec::new();
    let mut uri = first.to_owned();
    loop {
        let page = rig.call(get(&uri, Some(auth))).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.code());
        let json = page.json();
        items.extend(json["items"].as_array().unwrap().iter().cloned());
        match json["nextCursor"].as_str() {
            Some(cursor) => uri = format!("{first}&cursor={cursor}"),
            None => return items,
        }
    }
}

#[tokio::test]
async fn thumbnails_are_listed_by_prefix_a_page_at_a_time() {
    let rig = rig().await;
    let _worker = rig.run_worker();
    let auth = rw();
    for id in [
        "cover%2F1",
        "cover%2F2",
        "cover%2F3",
        "other",
        "cover%2F%C3%A9",
    ] {
        let created = rig
            .call(create(
                &post(id),
                Some(&auth),
                Some("image/png"),
                png(400, 200),
            ))
            .await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{id}: {}",
            created.code()
        );
    }
    let listed = pages(
        &rig,
        "/v1/thumbnails?environment=production&prefix=cover%2F&limit=2",
        &auth,
    )
    .await;
    let ids: Vec<&str> = listed
        .iter()
        .map(|t| t["thumbnailId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cover/1", "cover/2", "cover/3", "cover/\u{e9}"]);
    let first = &listed[0];
    assert_eq!(first["width"], 330);
    assert_eq!(first["contentType"], "image/png");
    assert!(first["placeholder"]["blurhash"].is_string(), "{first}");
    assert_eq!(
        first["url"],
        "/v1/thumbnails/cover%2F1?environment=production"
    );
    // The URL listed serves the thumbnail with the ETag listed.
    let served = rig
        .call(get(first["url"].as_str().unwrap(), Some(&auth)))
        .await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.header("etag"), first["etag"].as_str());

    // The other environment and another tenant hold none of them.
    let dev = pages(&rig, "/v1/thumbnails?environment=development", &auth).await;
    assert!(dev.is_empty());
    let other = pages(
        &rig,
        "/v1/thumbnails?environment=production",
        &tenant("globex"),
    )
    .await;
    assert!(other.is_empty(), "{other:?}");
}

#[tokio::test]
async fn jobs_are_listed_newest_first_and_filtered() {
    let rig = rig().await;
    let _worker = rig.run_worker();
    let auth = rw();
    let mut made = Vec::new();
    for (id, image) in [
        ("a", png(400, 200)),
        // A header that probes well, with no pixel data: the worker fails it.
        ("b", png_header(200, 100)),
        ("c", png(400, 400)),
    ] {
        let answer = rig
            .call(create(&post(id), Some(&auth), Some("image/png"), image))
            .await;
        made.push(answer);
        // Distinct milliseconds make "newest first" unambiguous to check.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert_eq!(made[0].status, StatusCode::CREATED);
    assert_eq!(made[2].status, StatusCode::CREATED);
    let listed = pages(&rig, "/v1/jobs?environment=production&limit=1", &auth).await;
    let ids: Vec<&str> = listed
        .iter()
        .map(|j| j["thumbnailId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{listed:?}");
    assert_eq!(ids, ["c", "b", "a"], "newest first");
    assert_eq!(listed[0]["status"], "succeeded");
    assert_eq!(listed[0]["result"]["width"], 330);
    let failed = pages(&rig, "/v1/jobs?environment=production&status=failed", &auth).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["thumbnailId"], "b");
    let code = failed[0]["error"]["code"].as_str().unwrap().to_owned();
    let by_code = pages(
        &rig,
        &format!("/v1/jobs?environment=production&code={code}"),
        &auth,
    )
    .await;
    assert_eq!(by_code, failed);
    let none = pages(
        &rig,
        "/v1/jobs?environment=production&code=ProcessingTimeout",
        &auth,
    )
    .await;
    assert!(none.is_empty());
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let rig = rig().await;
    let auth = rw();
    for (uri, target) in [
        ("/v1/thumbnails", "environment"),
        ("/v1/thumbnails?environment=production&limit=0", "limit"),
        ("/v1/thumbnails?environment=production&limit=1001", "limit"),
        (
            "/v1/thumbnails?environment=production&cursor=%21%21",
            "cursor",
        ),
        (
            "/v1/jobs?environment=production&cursor=bm90LWEta2V5",
            "cursor",
        ),
        ("/v1/jobs?environment=production&status=done", "status"),
        ("/v1/jobs?environment=production&code=Nope", "code"),
    ] {
        let answer = rig.call(get(uri, Some(&auth))).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(answer.code(), "InvalidQueryParameter", "{uri}");
        assert_eq!(answer.json()["error"]["target"], target, "{uri}");
    }
}

#[tokio::test]
async fn listing_needs_a_token_even_with_public_reads() {
    let auth = Auth::hs256(&SecretString::from(SECRET)).with_public_reads(true);
    let rig = rig_with(auth, ApiOptions::default()).await;
    for uri in [
        "/v1/thumbnails?environment=production",
        "/v1/jobs?environment=production",
    ] {
        let answer = rig.call(get(uri, None)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{uri}");
        let write_only = format!("Bearer {}", token(&[Scope::Write], None));
        let answer = rig.call(get(uri, Some(&write_only))).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{uri}");
    }
}
