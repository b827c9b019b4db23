//! Webhooks (README, "Webhooks") through the router, the intake's dispatcher and the
//! delivery worker, to a real HTTP receiver on loopback: registration and its checks, signed
//! deliveries with retries, the deliveries listing, 410, tenants apart.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use common::*;
use secrecy::SecretString;
use thumbd_api::{ApiOptions, Auth, Claims, Scope, mint_hs256_claims};
use thumbd_jobs::WebhookSecret;
use thumbd_jobs::webhooks::sign;
use thumbd_worker::{Deliverer, DeliveryOptions, DeliveryOutcome};

/// What a receiver got: headers and body of each request.
type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver on loopback answering the statuses of `script` in turn (then 200).
async fn receiver(script: Vec<u16>) -> (String, Received) {
    let received: Received = Arc::default();
    let script = Arc::new(Mutex::new(script.into_iter()));
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (seen, script) = (seen.clone(), script.clone());
            async move {
                seen.lock().unwrap().push((headers, body));
                let status = script.lock().unwrap().next().unwrap_or(200);
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// A token of `tenant` with `scopes`.
fn bearer(tenant: &str, scopes: &[Scope]) -> String {
    let mut claims = Claims::new("hooks", scopes, None, Duration::from_secs(600));
    claims.other.insert("tenant".into(), tenant.into());
    format!(
        "Bearer {}",
        mint_hs256_claims(&SecretString::from(SECRET), &claims)
    )
}

fn manage(tenant: &str) -> String {
    bearer(tenant, &[Scope::Read, Scope::Write, Scope::Webhooks])
}

fn put_webhook(auth: &str, id: &str, body: serde_json::Value) -> Request<Body> {
    Request::put(format!("/v1/webhooks/{id}?environment=production"))
        .header("authorization", auth)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn get(auth: &str, uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", auth)
        .body(Body::empty())
        .unwrap()
}

async fn rig_allowing_private() -> Rig {
    let options = ApiOptions {
        allow_private_webhooks: true,
        ..ApiOptions::default()
    };
    rig_with(Auth::hs256(&SecretString::from(SECRET)), options).await
}

/// A deliverer on the rig's webhook lane, retrying at once `retries` times.
fn deliverer(rig: &Rig, retries: usize) -> Deliverer {
    Deliverer::new(
        rig.webhook_queue.clone(),
        rig.state.store.clone(),
        thumbd_api::status_body,
        DeliveryOptions {
            schedule: vec![Duration::ZERO; retries],
            lease_wait: Duration::from_millis(100),
            fetch: thumbd_fetch::FetchOptions {
                allow_private: true,
                ..DeliveryOptions::default().fetch
            },
            ..DeliveryOptions::default()
        },
    )
}

/// Creates thumbnail `id` and runs its job; returns the job id.
async fn create_thumbnail(rig: &Rig, auth: &str, id: &str) -> String {
    let mut request = create(
        &format!("/v1/thumbnails?thumbnailId={id}&environment=production"),
        Some(auth),
        Some("image/png"),
        png(200, 150),
    );
    request
        .headers_mut()
        .insert("prefer", "respond-async".parse().unwrap());
    let answer = rig.call(request).await;
    assert!(answer.status.is_success(), "{:?}", answer.json());
    rig.worker.drain().await;
    answer.json()["id"].as_str().unwrap().to_owned()
}

fn check_signature(secret: &str, headers: &HeaderMap, body: &[u8]) {
    let secret = WebhookSecret::parse(secret).unwrap();
    let id = headers["webhook-id"].to_str().unwrap();
    let timestamp: i64 = headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - timestamp).abs() < 60, "a current timestamp");
    assert_eq!(
        headers["webhook-signature"].to_str().unwrap(),
        sign(&secret, id, timestamp, body)
    );
    assert_eq!(headers["content-type"], "application/json");
}

#[tokio::test]
async fn a_finished_job_is_delivered_signed_after_two_failures() {
    let rig = rig_allowing_private().await;
    let auth = manage("acme");
    let (url, received) = receiver(vec![500, 500, 200]).await;

    let created = rig
        .call(put_webhook(
            &auth,
            "orders",
            serde_json::json!({ "url": url, "events": ["job.succeeded", "job.failed"] }),
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.json());
    let secret = created.json()["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    let job = create_thumbnail(&rig, &auth, "cover").await;
    let pushed = rig.state.intake.webhooks().dispatch_due().await.unwrap();
    assert_eq!(pushed, 1, "one delivery for one subscribed endpoint");
    let outcomes = deliverer(&rig, 6).drain().await;
    assert!(
        matches!(
            outcomes.as_slice(),
            [
                DeliveryOutcome::Retried { .. },
                DeliveryOutcome::Retried { .. },
                DeliveryOutcome::Delivered { .. }
            ]
        ),
        "{outcomes:?}"
    );

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 3, "three attempts");
    let ids: Vec<_> = received
        .iter()
        .map(|(h, _)| h["webhook-id"].clone())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one event id on every attempt"
    );
    for (headers, body) in &received {
        check_signature(&secret, headers, body);
    }
    let event: serde_json::Value = serde_json::from_slice(&received[2].1).unwrap();
    assert_eq!(event["type"], "job.succeeded");
    assert!(event["timestamp"].is_string());
    assert_eq!(event["data"]["id"], job.as_str());
    assert_eq!(event["data"]["status"], "succeeded");
    assert_eq!(event["data"]["thumbnailId"], "cover");

    let deliveries = rig
        .call(get(
            &auth,
            "/v1/webhooks/orders/deliveries?environment=production",
        ))
        .await;
    assert_eq!(deliveries.status, StatusCode::OK);
    let items = deliveries.json()["items"].as_array().unwrap().clone();
    let statuses: Vec<_> = items
        .iter()
        .map(|a| a["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 500, 500], "newest first: {items:?}");
    let attempts: Vec<_> = items
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [3, 2, 1]);
    assert!(items[0].get("nextRetryAt").is_none(), "delivered: no retry");
    assert!(items[1]["nextRetryAt"].is_string());
    assert_eq!(
        items[2]["error"],
        "the endpoint answered 500 Internal Server Error"
    );
    assert_eq!(items[0]["type"], "job.succeeded");
    assert_eq!(items[0]["eventId"], ids[0].to_str().unwrap());

    // Nothing left: no duplicate delivery.
    assert_eq!(rig.state.intake.webhooks().dispatch_due().await.unwrap(), 0);
    assert!(deliverer(&rig, 6).drain().await.is_empty());
    assert_eq!(rig.state.store.pending_deliveries().await.unwrap(), 0);
}

#[tokio::test]
async fn registration_is_checked_and_tenants_are_apart() {
    let rig = rig().await; // private webhook addresses not allowed
    let auth = manage("acme");
    let body = |url: &str| serde_json::json!({ "url": url, "events": ["job.succeeded"] });
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest",
        "http://localhost/hook",
        "ftp://example.com/hook",
        "https://user:pw@example.com/hook",
    ] {
        let answer = rig.call(put_webhook(&auth, "w", body(url))).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(answer.code(), "WebhookUrlNotAllowed", "{url}");
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            !message.contains("source"),
            "worded for a webhook: {message}"
        );
    }
    let bad_bodies = [
        serde_json::json!({ "url": "http://1.1.1.1/h", "events": [] }),
        serde_json::json!({ "url": "http://1.1.1.1/h", "events": ["job.started"] }),
        serde_json::json!({ "url": "http://1.1.1.1/h", "events": ["job.failed"], "secret": "hunter2" }),
        serde_json::json!({ "url": "http://1.1.1.1/h", "events": ["job.failed"], "colour": 1 }),
        serde_json::json!({ "events": ["job.failed"] }),
    ];
    for b in bad_bodies {
        let answer = rig.call(put_webhook(&auth, "w", b.clone())).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(answer.code(), "InvalidRequestBody", "{b}");
    }
    let answer = rig
        .call(put_webhook(&auth, "not%20ok", body("http://1.1.1.1/h")))
        .await;
    assert_eq!(answer.code(), "InvalidQueryParameter");

    // A public address (never contacted here) is fine; a chosen secret is kept and echoed
    // once.
    let secret = WebhookSecret::generate();
    let mut b = body("http://1.1.1.1/h");
    b["secret"] = secret.expose().into();
    let answer = rig.call(put_webhook(&auth, "w", b)).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.json()["secret"], secret.expose());
    let replaced = rig
        .call(put_webhook(&auth, "w", body("http://1.0.0.1/h")))
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert!(
        replaced.json().get("secret").is_none(),
        "shown on creation only"
    );
    let got = rig
        .call(get(&auth, "/v1/webhooks/w?environment=production"))
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json()["url"], "http://1.0.0.1/h");
    assert_eq!(got.json()["events"], serde_json::json!(["job.succeeded"]));
    assert!(got.json().get("secret").is_none());

    // Scope.
    let rw_only = bearer("acme", &[Scope::Read, Scope::Write]);
    let answer = rig
        .call(get(&rw_only, "/v1/webhooks?environment=production"))
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.code(), "InsufficientPermissions");

    // Another tenant sees nothing of it.
    let other = manage("globex");
    let list = rig
        .call(get(&other, "/v1/webhooks?environment=production"))
        .await;
    assert_eq!(list.json()["items"], serde_json::json!([]));
    for uri in [
        "/v1/webhooks/w?environment=production",
        "/v1/webhooks/w/deliveries?environment=production",
    ] {
        let answer = rig.call(get(&other, uri)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(answer.code(), "WebhookNotFound");
    }
    let delete = |auth: &str| {
        Request::delete("/v1/webhooks/w?environment=production")
            .header("authorization", auth)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(rig.call(delete(&other)).await.status, StatusCode::NOT_FOUND);
    let list = rig
        .call(get(&auth, "/v1/webhooks?environment=production"))
        .await;
    assert_eq!(list.json()["items"][0]["webhookId"], "w");
    assert_eq!(rig.call(delete(&auth)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(rig.call(delete(&auth)).await.code(), "WebhookNotFound");
}

#[tokio::test]
async fn a_deleted_thumbnail_is_announced_and_410_disables_the_endpoint() {
    let rig = rig_allowing_private().await;
    let auth = manage("default");
    let (url, received) = receiver(vec![200, 410]).await;
    let created = rig
        .call(put_webhook(
            &auth,
            "deletions",
            serde_json::json!({ "url": url, "events": ["thumbnail.deleted"] }),
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);

    for id in ["a", "b"] {
        create_thumbnail(&rig, &auth, id).await;
    }
    assert_eq!(
        rig.state.intake.webhooks().dispatch_due().await.unwrap(),
        0,
        "job events are not subscribed"
    );
    let delete = |id: &str| {
        Request::delete(format!("/v1/thumbnails/{id}?environment=production"))
            .header("authorization", &auth)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(rig.call(delete("a")).await.status, StatusCode::NO_CONTENT);
    rig.state.intake.webhooks().dispatch_due().await.unwrap();
    let outcomes = deliverer(&rig, 6).drain().await;
    assert!(
        matches!(outcomes.as_slice(), [DeliveryOutcome::Delivered { .. }]),
        "{outcomes:?}"
    );
    let event: serde_json::Value = serde_json::from_slice(&received.lock().unwrap()[0].1).unwrap();
    assert_eq!(event["type"], "thumbnail.deleted");
    assert_eq!(
        event["data"],
        serde_json::json!({ "thumbnailId": "a", "environment": "production" })
    );

    // The endpoint answers 410 Gone: disabled, no retry; the delivery queued behind it is
    // cancelled unsent, and nothing more is written for it.
    for id in ["c", "d"] {
        create_thumbnail(&rig, &auth, id).await;
    }
    for id in ["b", "c"] {
        assert_eq!(rig.call(delete(id)).await.status, StatusCode::NO_CONTENT);
    }
    assert_eq!(rig.state.intake.webhooks().dispatch_due().await.unwrap(), 2);
    let outcomes = deliverer(&rig, 6).drain().await;
    assert!(
        matches!(
            outcomes.as_slice(),
            [DeliveryOutcome::Failed { .. }, DeliveryOutcome::Skipped]
        ),
        "{outcomes:?}"
    );
    let got = rig
        .call(get(&auth, "/v1/webhooks/deletions?environment=production"))
        .await;
    assert!(got.json()["disabledAt"].is_string(), "{:?}", got.json());
    let attempts = rig
        .call(get(
            &auth,
            "/v1/webhooks/deletions/deliveries?environment=production",
        ))
        .await
        .json();
    assert_eq!(
        attempts["items"][0]["error"],
        "the endpoint is disabled (it answered 410 Gone)"
    );
    assert!(attempts["items"][0].get("status").is_none());
    assert_eq!(attempts["items"][1]["status"], 410);
    assert_eq!(rig.state.store.pending_deliveries().await.unwrap(), 0);
    assert_eq!(rig.call(delete("d")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(rig.state.intake.webhooks().dispatch_due().await.unwrap(), 0);
    assert_eq!(
        received.lock().unwrap().len(),
        2,
        "a and b; c was cancelled"
    );

    // A PUT enables it again.
    let again = rig
        .call(put_webhook(
            &auth,
            "deletions",
            serde_json::json!({ "url": url, "events": ["thumbnail.deleted"] }),
        ))
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.json().get("disabledAt").is_none());
    let depth = rig.webhook_queue.depth().await.unwrap();
    assert_eq!((depth.ready, depth.dead), (0, 0));
}

#[tokio::test]
async fn avif_renditions_made_after_the_job_are_announced_once() {
    let mut options = ApiOptions {
        allow_private_webhooks: true,
        ..ApiOptions::default()
    };
    options
        .profiles
        .insert_all("web=160:avif,160:webp")
        .unwrap();
    let rig = rig_with(Auth::hs256(&SecretString::from(SECRET)), options).await;
    let auth = manage("acme");
    let (url, received) = receiver(Vec::new()).await;
    let created = rig
        .call(put_webhook(
            &auth,
            "renditions",
            serde_json::json!({ "url": url, "events": ["rendition.ready"] }),
        ))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);

    let mut request = create(
        "/v1/thumbnails?thumbnailId=cover&environment=production&profile=web",
        Some(&auth),
        Some("image/png"),
        png(200, 150),
    );
    request
        .headers_mut()
        .insert("prefer", "respond-async".parse().unwrap());
    let job = rig.call(request).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    rig.worker.drain().await;
    // The job has succeeded; its AVIF is still pending: nothing to announce yet.
    assert_eq!(rig.state.intake.webhooks().dispatch_due().await.unwrap(), 0);
    let made = rig.renditions.drain().await;
    assert_eq!(
        made,
        [thumbd_worker::RenditionOutcome::Made {
            ready: 1,
            failed: 0
        }]
    );
    assert_eq!(rig.state.intake.webhooks().dispatch_due().await.unwrap(), 1);
    deliverer(&rig, 1).drain().await;
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let event: serde_json::Value = serde_json::from_slice(&received[0].1).unwrap();
    assert_eq!(event["type"], "rendition.ready");
    assert_eq!(event["data"]["id"], job.as_str());
    let avif = &event["data"]["result"]["renditions"][0];
    assert_eq!(
        (avif["format"].as_str(), avif["status"].as_str()),
        (Some("avif"), Some("ready"))
    );
    assert!(avif["etag"].is_string());
    // The same lane message again (a redelivery) announces nothing more.
    let lane = thumbd_jobs::SqliteJobQueue::unlocked(rig.db.clone(), Duration::from_secs(30))
        .lane(thumbd_jobs::RENDITION_LANE);
    let again = thumbd_jobs::RenditionWork {
        job_id: thumbd_jobs::JobId::parse(&job).unwrap(),
    };
    thumbd_jobs::JobQueue::push_bytes(&lane, &again.to_json())
        .await
        .unwrap();
    assert_eq!(
        rig.renditions.drain().await,
        [thumbd_worker::RenditionOutcome::Skipped]
    );
    assert_eq!(rig.state.intake.webhooks().dispatch_due().await.unwrap(), 0);
}
