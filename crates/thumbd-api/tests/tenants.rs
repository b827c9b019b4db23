//! Tenants (README, "Tenants") through the router: two tenants using the same thumbnailId,
//! contextId
//! and Idempotency-Key never see, replace or delete each other's data; another tenant's
//! job, upload or thumbnail answers 404, never 403.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use secrecy::SecretString;
use thumbd_api::{ApiOptions, Auth, Claims, Scope, mint_hs256_claims};
use thumbd_jobs::{
    BlobKey, Environment, JobId, JobMessage, JobSource, Namespace, Tenant, ThumbnailId,
};

const POST: &str = "/v1/thumbnails?thumbnailId=shared&environment=production";
const SHARED: &str = "/v1/thumbnails/shared?environment=production";

/// A read-write token of `tenant` (under claim `claim`); `None`: no tenant claim.
fn token_in(claim: &str, tenant: Option<&str>) -> String {
    let mut claims = Claims::new(
        "same-subject",
        &[Scope::Read, Scope::Write],
        None,
        Duration::from_secs(600),
    );
    if let Some(tenant) = tenant {
        claims.other.insert(claim.into(), tenant.into());
    }
    format!(
        "Bearer {}",
        mint_hs256_claims(&SecretString::from(SECRET), &claims)
    )
}

fn create_with_key(auth: &str, image: Vec<u8>) -> axum::http::Request<axum::body::Body> {
    let mut r = create(POST, Some(auth), Some("image/png"), image);
    r.headers_mut()
        .insert("idempotency-key", "same-key".parse().unwrap());
    r
}

#[tokio::test]
async fn two_tenants_with_the_same_ids_never_meet() {
    let rig = rig().await;
    let _worker = rig.run_worker();
    let (acme, globex, default) = (
        token_in("tenant", Some("acme")),
        token_in("tenant", Some("globex")),
        token_in("tenant", None),
    );

    // The same thumbnailId and Idempotency-Key from the same subject: two jobs, two
    // thumbnails, no replay.
    let a = rig.call(create_with_key(&acme, png(400, 300))).await;
    let g = rig.call(create_with_key(&globex, png(300, 400))).await;
    assert_eq!(
        (a.status, g.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(
        g.header("idempotent-replayed"),
        None,
        "not the other tenant's job"
    );
    let (a_job, g_job) = (a.json()["id"].clone(), g.json()["id"].clone());
    assert_ne!(a_job, g_job);
    let again = rig.call(create_with_key(&acme, png(400, 300))).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        again.json()["id"],
        a_job,
        "a tenant's own key still replays"
    );

    let a_thumb = rig.call(get(SHARED, Some(&acme))).await;
    let g_thumb = rig.call(get(SHARED, Some(&globex))).await;
    assert_eq!(
        (a_thumb.status, g_thumb.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_ne!(a_thumb.body, g_thumb.body);
    assert_eq!(a_thumb.header("etag"), a.json()["result"]["etag"].as_str());
    assert_eq!(
        rig.call(get(SHARED, Some(&default))).await.code(),
        "ThumbnailNotFound",
        "a token without the claim is the tenant `default`"
    );

    // Jobs: another tenant's is unknown.
    let status = |job: &serde_json::Value| format!("/v1/status/{}", job.as_str().unwrap());
    assert_eq!(
        rig.call(get(&status(&a_job), Some(&acme))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        rig.call(get(&status(&a_job), Some(&globex))).await.code(),
        "JobNotFound"
    );

    // Delete: only one's own.
    assert_eq!(
        rig.call(delete(SHARED, Some(&globex))).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(rig.call(get(SHARED, Some(&acme))).await.body, a_thumb.body);
    assert_eq!(
        rig.call(get(SHARED, Some(&globex))).await.code(),
        "ThumbnailNotFound"
    );

    // Contexts.
    let ctx = "/v1/contexts/shared-ctx?environment=production";
    let put_ctx = |auth: &str, thumbnail: &str| {
        axum::http::Request::put(ctx)
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(format!(
                r#"{{"thumbnailId": "{thumbnail}"}}"#
            )))
            .unwrap()
    };
    assert_eq!(
        rig.call(put_ctx(&acme, "shared")).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        rig.call(get(ctx, Some(&globex))).await.code(),
        "ContextNotFound"
    );
    assert_eq!(
        rig.call(put_ctx(&globex, "other")).await.status,
        StatusCode::CREATED,
        "the other tenant's context of the same id is a new one"
    );
    // Deleting globex's context leaves acme's context and thumbnail alone.
    assert_eq!(
        rig.call(delete(ctx, Some(&globex))).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        rig.call(get(ctx, Some(&acme))).await.json()["thumbnailId"],
        "shared"
    );
    assert_eq!(
        rig.call(get(SHARED, Some(&acme))).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn upload_tickets_work_only_for_their_tenant_and_environment() {
    let rig = rig().await;
    let _worker = rig.run_worker();
    let (acme, globex) = (
        token_in("tenant", Some("acme")),
        token_in("tenant", Some("globex")),
    );
    let upload = |auth: &str, query: &str| {
        create(
            &format!("/v1/uploads{query}"),
            Some(auth),
            Some("image/png"),
            png(200, 200),
        )
    };
    let u = rig.call(upload(&acme, "?environment=production")).await;
    assert_eq!(u.status, StatusCode::CREATED, "{:?}", u.body);
    let ticket = u.json()["uploadTicket"].as_str().unwrap().to_owned();
    assert_eq!(
        rig.call(get(&format!("/v1/uploads/{ticket}"), Some(&globex)))
            .await
            .code(),
        "UploadTicketNotFound"
    );
    let from_ticket = |auth: &str, env: &str| {
        create(
            &format!("/v1/thumbnails?thumbnailId=from-ticket&environment={env}"),
            Some(auth),
            Some("application/json"),
            format!(r#"{{"uploadTicket": "{ticket}"}}"#).into_bytes(),
        )
    };
    assert_eq!(
        rig.call(from_ticket(&globex, "production")).await.code(),
        "UploadTicketNotFound",
        "another tenant's ticket"
    );
    assert_eq!(
        rig.call(from_ticket(&acme, "development")).await.code(),
        "UploadTicketNotFound",
        "the other environment's ticket"
    );
    let ok = rig.call(from_ticket(&acme, "production")).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
}

#[tokio::test]
async fn a_queue_producer_names_the_tenant_in_its_message() {
    let rig = rig().await;
    let acme = token_in("tenant", Some("acme"));
    let globex = token_in("tenant", Some("globex"));
    let mut first = create(POST, Some(&globex), Some("image/png"), png(300, 400));
    first
        .headers_mut()
        .insert("prefer", "respond-async".parse().unwrap());
    assert_eq!(rig.call(first).await.status, StatusCode::ACCEPTED);
    rig.worker.drain().await;
    let before = rig.call(get(SHARED, Some(&globex))).await;

    // A producer's message for tenant acme, same thumbnailId, as JSON on the queue.
    let job = JobId::new();
    let blob_key = BlobKey::original(job);
    rig.state
        .blobs
        .put(&blob_key, png(400, 300).into())
        .await
        .unwrap();
    let message = JobMessage {
        job_id: Some(job),
        tenant: Tenant::parse("acme").unwrap(),
        environment: Environment::Production,
        thumbnail_id: ThumbnailId::parse("shared").unwrap(),
        source: JobSource::Blob { blob_key },
        reply_to: None,
        profile: None,
    };
    assert!(
        String::from_utf8(message.to_json())
            .unwrap()
            .contains(r#""tenant":"acme""#)
    );
    rig.state.queue.push(&message).await.unwrap();
    rig.worker.drain().await;

    let acme_thumb = rig.call(get(SHARED, Some(&acme))).await;
    assert_eq!(acme_thumb.status, StatusCode::OK);
    let after = rig.call(get(SHARED, Some(&globex))).await;
    assert_eq!(
        after.body, before.body,
        "the other tenant's thumbnail is untouched"
    );
    assert_ne!(acme_thumb.body, after.body);
    let record = rig
        .state
        .store
        .thumbnail(
            &Namespace::new(Tenant::parse("acme").unwrap(), Environment::Production),
            &ThumbnailId::parse("shared").unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.job_id, job);
    assert_eq!(
        rig.call(get(&format!("/v1/status/{job}"), Some(&globex)))
            .await
            .code(),
        "JobNotFound"
    );
}

#[tokio::test]
async fn the_tenant_claim_is_validated_and_may_be_renamed() {
    let auth = Auth::hs256(&SecretString::from(SECRET)).with_tenant_claim("org");
    let rig = rig_with(auth, ApiOptions::default()).await;
    let _worker = rig.run_worker();
    for bad in [
        token_in("org", Some("a/b")),
        token_in("org", Some("")),
        token_in("org", Some(&"x".repeat(65))),
    ] {
        assert_eq!(
            rig.call(get(SHARED, Some(&bad))).await.code(),
            "InvalidToken"
        );
    }
    let org = token_in("org", Some("acme"));
    let a = rig
        .call(create(POST, Some(&org), Some("image/png"), png(200, 200)))
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    // The claim `tenant` means nothing under this configuration: that token is `default`'s.
    let wrong_claim = token_in("tenant", Some("acme"));
    assert_eq!(
        rig.call(get(SHARED, Some(&wrong_claim))).await.code(),
        "ThumbnailNotFound"
    );
    assert_eq!(
        rig.call(get(SHARED, Some(&org))).await.status,
        StatusCode::OK
    );
}
