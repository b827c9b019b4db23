//! Signed URLs (README, "Signed URLs") through the router: a result URL signed with
//! `url_signing_key` answers without a token until it expires; anything changed in it, or
//! an expired one, answers 403 `InvalidSignature`; another tenant's signature is its own.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use secrecy::SecretString;
use thumbd_api::{ApiOptions, Auth, Claims, Scope, UrlSigner, mint_hs256_claims};
use thumbd_jobs::Tenant;

const KEY: &str = "signing-key-0123456789abcdef-0123456789";

fn signer(ttl: Duration) -> UrlSigner {
    UrlSigner::new(SecretString::from(KEY), ttl)
}

async fn signed_rig() -> Rig {
    let options = ApiOptions {
        url_signer: Some(signer(Duration::from_secs(600))),
        ..ApiOptions::default()
    };
    rig_with(Auth::hs256(&SecretString::from(SECRET)), options).await
}

fn acme() -> String {
    let mut claims = Claims::new(
        "signer",
        &[Scope::Read, Scope::Write],
        None,
        Duration::from_secs(600),
    );
    claims.other.insert("tenant".into(), "acme".into());
    format!(
        "Bearer {}",
        mint_hs256_claims(&SecretString::from(SECRET), &claims)
    )
}

/// Creates thumbnail `id` as `auth`; returns the signed URL of the result.
async fn create_signed(rig: &Rig, auth: &str, id: &str) -> String {
    let created = rig
        .call(create(
            &format!("/v1/thumbnails?thumbnailId={id}&environment=production"),
            Some(auth),
            Some("image/png"),
            png(400, 300),
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.code());
    created.json()["result"]["url"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_signed_url_serves_without_a_token_and_nothing_else_does() {
    let rig = signed_rig().await;
    let _worker = rig.run_worker();
    let url = create_signed(&rig, &rw(), "cover%2F1").await;
    assert!(
        url.starts_with("/v1/thumbnails/cover%2F1?environment=production&expires="),
        "{url}"
    );
    assert!(url.contains("&sig="), "{url}");

    let served = rig.call(get(&url, None)).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.header("content-type"), Some("image/png"));
    let head = rig.call(head(&url, None)).await;
    assert_eq!(head.status, StatusCode::OK);
    // The unsigned URL still needs a token.
    let unsigned = url.split("&expires=").next().unwrap();
    assert_eq!(
        rig.call(get(unsigned, None)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Tampered: another id, environment or expiry, a changed or missing signature.
    let sig_at = url.find("&sig=").unwrap();
    let tampered = [
        url.replace("cover%2F1", "cover%2F2"),
        url.replace("production", "development"),
        url.replace("expires=", "expires=9"),
        format!("{}&sig=AAAA", &url[..sig_at]),
        format!("{url}&more=1"),
    ];
    for bad in tampered {
        let answer = rig.call(get(&bad, None)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{bad}");
        assert_eq!(answer.code(), "InvalidSignature", "{bad}");
    }

    // The status body and the listing carry signed URLs too.
    let listed = rig
        .call(get("/v1/thumbnails?environment=production", Some(&rw())))
        .await;
    let listed_url = listed.json()["items"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        rig.call(get(&listed_url, None)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_expired_signature_is_refused() {
    let rig = signed_rig().await;
    let _worker = rig.run_worker();
    let url = create_signed(&rig, &rw(), "old").await;
    let path = url.split("&expires=").next().unwrap();
    // Signed by the same key an hour ago with a one-second lifetime.
    let now = thumbd_api_now() - 3600;
    let expired = signer(Duration::from_secs(1)).sign(path, &Tenant::default(), now);
    let answer = rig.call(get(&expired, None)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.code(), "InvalidSignature");
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn a_signature_is_its_tenants() {
    let rig = signed_rig().await;
    let _worker = rig.run_worker();
    let url = create_signed(&rig, &acme(), "shared").await;
    assert!(url.contains("&tenant=acme&"), "{url}");
    assert_eq!(rig.call(get(&url, None)).await.status, StatusCode::OK);
    // The default tenant has no thumbnail `shared`; a URL claiming to be its is not signed.
    let forged = url.replace("&tenant=acme", "");
    assert_eq!(
        rig.call(get(&forged, None)).await.status,
        StatusCode::FORBIDDEN
    );
}

fn thumbd_api_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// README's Python minting function, run as written, makes a URL thumbd serves.
#[tokio::test]
async fn the_readme_python_mints_urls_thumbd_accepts() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme
        .split("### Signed URLs")
        .nth(1)
        .expect("README section");
    let code = section
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a python block");
    let script =
        format!("{code}\nprint(signed_url({KEY:?}.encode(), \"cover/\u{e9}\", \"production\"))\n");
    let out = match std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("python3 is needed for this test: {e}"),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let rig = signed_rig().await;
    let _worker = rig.run_worker();
    create_signed(&rig, &rw(), "cover%2F%C3%A9").await;
    let served = rig.call(get(&url, None)).await;
    assert_eq!(served.status, StatusCode::OK, "{url}");
}

/// `v={etag}`: only that version is served, cacheable for a year (publicly only when no
/// token was needed); once replaced, that version is gone. Unversioned URLs revalidate.
#[tokio::test]
async fn versioned_urls_are_immutable_until_replaced() {
    let rig = signed_rig().await;
    let _worker = rig.run_worker();
    let signed = create_signed(&rig, &rw(), "versioned").await;
    let plain = "/v1/thumbnails/versioned?environment=production";
    let tag = rig.call(get(plain, Some(&rw()))).await;
    assert_eq!(tag.header("cache-control"), Some("private, no-cache"));
    let version = tag.header("etag").unwrap().trim_matches('"').to_owned();
    let versioned = format!("{plain}&v={version}");

    let with_token = rig.call(get(&versioned, Some(&rw()))).await;
    assert_eq!(with_token.status, StatusCode::OK);
    assert_eq!(
        with_token.header("cache-control"),
        Some("private, max-age=31536000, immutable")
    );
    let path = signed.split("&expires=").next().unwrap();
    let signed_versioned = signer(Duration::from_secs(600)).sign(
        &format!("{path}&v={version}"),
        &Tenant::default(),
        thumbd_api_now(),
    );
    let public = rig.call(get(&signed_versioned, None)).await;
    assert_eq!(public.status, StatusCode::OK);
    assert_eq!(
        public.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );

    // Replaced: the old version is gone, the plain URL serves the new one.
    let replaced = rig
        .call(create(
            "/v1/thumbnails?thumbnailId=versioned&environment=production",
            Some(&rw()),
            Some("image/png"),
            png(500, 250),
        ))
        .await;
    assert_eq!(replaced.status, StatusCode::CREATED);
    for stale in [versioned.as_str(), signed_versioned.as_str()] {
        let gone = rig.call(get(stale, Some(&rw()))).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{stale}");
        assert_eq!(gone.code(), "ThumbnailNotFound");
    }
    let now = rig.call(get(plain, Some(&rw()))).await;
    assert_ne!(now.header("etag").unwrap().trim_matches('"'), version);
}
