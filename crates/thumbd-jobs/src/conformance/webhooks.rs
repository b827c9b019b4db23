//! Webhooks: endpoints per namespace, events written with the changes they announce (one
//! delivery per subscribed, enabled endpoint, none twice), dispatch claims, attempts.

use std::time::Duration;

use crate::associations::ContextRecord;
use crate::ids::{ContextId, Environment, Namespace, Tenant, ThumbnailId};
use crate::job::{JobFailure, JobRecord};
use crate::store::MetaStore;
use crate::timestamp::Timestamp;
use crate::webhooks::{
    AttemptRecord, DeliveryState, EventType, NewWebhook, WebhookId, WebhookPut, WebhookSecret,
};
use thumbd_codes::Code;

fn namespace(tenant: &str) -> Namespace {
    Namespace::new(Tenant::parse(tenant).unwrap(), Environment::Production)
}

fn endpoint(namespace: &Namespace, id: &str, events: &[EventType], now: Timestamp) -> NewWebhook {
    NewWebhook {
        namespace: namespace.clone(),
        id: WebhookId::parse(id).unwrap(),
        url: format!("https://example.invalid/{id}"),
        events: events.to_vec(),
        secret: None,
        now,
    }
}

/// Every delivery due now, claimed (and so not due again for a minute).
async fn claim(store: &dyn MetaStore) -> Vec<i64> {
    let now = Timestamp::now().plus(Duration::from_secs(1));
    store
        .claim_dispatch(now, now.plus(Duration::from_secs(60)), 1000)
        .await
        .unwrap()
}

/// Runs the checks on `store`; `now` is the suite's clock.
pub(super) async fn webhooks(store: &dyn MetaStore, now: Timestamp) {
    let ns = namespace("hooks");
    let other = namespace("otherhooks");

    // Create, read, replace (the secret kept unless given), list, tenants apart.
    let created = store
        .put_webhook(&endpoint(&ns, "all", &EventType::ALL, now))
        .await
        .unwrap();
    let WebhookPut::Created(first) = created else {
        panic!("a new endpoint is created: {created:?}");
    };
    assert!(first.secret.expose().starts_with("whsec_"));
    let mut replace = endpoint(
        &ns,
        "all",
        &[EventType::JobSucceeded, EventType::ThumbnailDeleted],
        now,
    );
    replace.url = "https://example.invalid/new".into();
    let WebhookPut::Replaced(second) = store.put_webhook(&replace).await.unwrap() else {
        panic!("a second PUT replaces");
    };
    assert_eq!(
        second.secret, first.secret,
        "no secret given: the stored one stays"
    );
    assert_eq!(second.created_at, first.created_at);
    let read = store.webhook(&ns, &first.id).await.unwrap().unwrap();
    assert_eq!(read, second);
    assert_eq!(read.url, "https://example.invalid/new");
    let chosen = WebhookSecret::generate();
    let mut failed_only = endpoint(&ns, "failed", &[EventType::JobFailed], now);
    failed_only.secret = Some(chosen.clone());
    store.put_webhook(&failed_only).await.unwrap();
    assert_eq!(
        store
            .webhook(&ns, &failed_only.id)
            .await
            .unwrap()
            .unwrap()
            .secret,
        chosen
    );
    store
        .put_webhook(&endpoint(&other, "all", &EventType::ALL, now))
        .await
        .unwrap();
    let listed: Vec<String> = store
        .list_webhooks(&ns)
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id.to_string())
        .collect();
    assert_eq!(listed, ["all", "failed"], "by id, this namespace's only");
    assert_eq!(
        store
            .webhook(&namespace("nobody"), &first.id)
            .await
            .unwrap(),
        None
    );

    // A job's finish writes a delivery for each subscribed endpoint, in its namespace only.
    assert!(
        claim(store).await.is_empty(),
        "changes made before any endpoint existed announce nothing"
    );
    let mut message = super::message(ns.environment, "hooked");
    message.tenant = ns.tenant.clone();
    let job = JobRecord::queued(message.job_id.unwrap(), &message, now);
    store.create_job(&job).await.unwrap();
    store.start_job(job.id, now).await.unwrap();
    store
        .finish_succeeded(job.id, &super::result_for(job.id, 100), now)
        .await
        .unwrap();
    let claimed = claim(store).await;
    assert_eq!(
        claimed.len(),
        1,
        "only `all` subscribes to job.succeeded here"
    );
    let delivery = store.delivery(claimed[0]).await.unwrap().unwrap();
    assert_eq!(delivery.namespace, ns);
    assert_eq!(delivery.webhook_id.as_str(), "all");
    assert_eq!(delivery.kind, EventType::JobSucceeded);
    assert_eq!(delivery.job, Some(job.id));
    assert_eq!(delivery.state, DeliveryState::Pending);
    assert_eq!(delivery.attempts, 0);
    assert!(
        claim(store).await.is_empty(),
        "a claimed delivery is not claimed twice"
    );
    // Claimed but never recorded pushed: due again once the claim runs out.
    let late = Timestamp::now().plus(Duration::from_secs(120));
    let again = store
        .claim_dispatch(late, late.plus(Duration::from_secs(60)), 10)
        .await
        .unwrap();
    assert_eq!(again, claimed, "a dead dispatcher's claim expires");
    store.mark_dispatched(&again).await.unwrap();
    let much_later = late.plus(Duration::from_secs(3600));
    assert!(
        store
            .claim_dispatch(much_later, much_later, 10)
            .await
            .unwrap()
            .is_empty(),
        "a dispatched delivery is never claimed again"
    );

    // A second finish of the same job (a redelivery) writes nothing.
    store
        .finish_succeeded(job.id, &super::result_for(job.id, 100), now)
        .await
        .unwrap();
    assert!(claim(store).await.is_empty());

    // A failure: `failed` subscribes (and `all` no longer does).
    let mut message = super::message(ns.environment, "broken");
    message.tenant = ns.tenant.clone();
    let broken = JobRecord::queued(message.job_id.unwrap(), &message, now);
    store.create_job(&broken).await.unwrap();
    let failure = JobFailure {
        code: Code::CorruptImage,
        message: "bad".into(),
    };
    assert!(store.finish_failed(broken.id, &failure, now).await.unwrap());
    assert!(!store.finish_failed(broken.id, &failure, now).await.unwrap());
    let claimed = claim(store).await;
    assert_eq!(claimed.len(), 1);
    let delivery = store.delivery(claimed[0]).await.unwrap().unwrap();
    assert_eq!(
        (delivery.webhook_id.as_str(), delivery.kind),
        ("failed", EventType::JobFailed)
    );

    // Deleting a thumbnail, directly or with its last context, announces it.
    assert!(
        store
            .delete_thumbnail(&ns, &ThumbnailId::parse("hooked").unwrap())
            .await
            .unwrap()
            .is_some()
    );
    let claimed = claim(store).await;
    assert_eq!(claimed.len(), 1);
    let deleted = store.delivery(claimed[0]).await.unwrap().unwrap();
    assert_eq!(deleted.kind, EventType::ThumbnailDeleted);
    let data: serde_json::Value = serde_json::from_str(deleted.data.as_deref().unwrap()).unwrap();
    assert_eq!(data["thumbnailId"], "hooked");
    assert_eq!(data["environment"], "production");

    let mut message = super::message(ns.environment, "in-context");
    message.tenant = ns.tenant.clone();
    let job = JobRecord::queued(message.job_id.unwrap(), &message, now);
    store.create_job(&job).await.unwrap();
    store
        .finish_succeeded(job.id, &super::result_for(job.id, 100), now)
        .await
        .unwrap();
    claim(store).await;
    let context = ContextRecord {
        tenant: ns.tenant.clone(),
        environment: ns.environment,
        context_id: ContextId::parse("c").unwrap(),
        thumbnail_id: ThumbnailId::parse("in-context").unwrap(),
        body: "{}".into(),
        created_at: now,
        updated_at: now,
    };
    store.put_context(&context).await.unwrap();
    let change = store
        .delete_context(&ns, &context.context_id)
        .await
        .unwrap()
        .unwrap();
    assert!(change.deleted_thumbnail.is_some());
    let claimed = claim(store).await;
    assert_eq!(
        claimed.len(),
        1,
        "the last context's removal deleted the thumbnail"
    );

    // Attempts: recorded, listed newest first, and they settle the delivery.
    let attempt = |n: u32, status: Option<u16>, next: Option<Timestamp>| AttemptRecord {
        delivery_id: delivery.id,
        namespace: ns.clone(),
        webhook_id: delivery.webhook_id.clone(),
        event_id: delivery.event_id.clone(),
        kind: delivery.kind,
        attempt: n,
        at: now,
        status,
        error: status.is_none().then(|| "refused".to_owned()),
        duration_ms: 12,
        next_retry_at: next,
    };
    let retry_at = now.plus(Duration::from_secs(5));
    store
        .record_attempt(&attempt(1, None, Some(retry_at)), DeliveryState::Pending)
        .await
        .unwrap();
    store
        .record_attempt(&attempt(2, Some(200), None), DeliveryState::Delivered)
        .await
        .unwrap();
    let attempts = store
        .list_attempts(&ns, &delivery.webhook_id, 10)
        .await
        .unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0], attempt(2, Some(200), None), "newest first");
    assert_eq!(attempts[1], attempt(1, None, Some(retry_at)));
    let settled = store.delivery(delivery.id).await.unwrap().unwrap();
    assert_eq!(
        (settled.state, settled.attempts),
        (DeliveryState::Delivered, 2)
    );
    assert!(
        store
            .list_attempts(&other, &delivery.webhook_id, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Disabled (410): no more deliveries until a PUT enables it again.
    let all = WebhookId::parse("all").unwrap();
    store.disable_webhook(&ns, &all, now).await.unwrap();
    assert!(
        store
            .webhook(&ns, &all)
            .await
            .unwrap()
            .unwrap()
            .disabled_at
            .is_some()
    );
    assert!(
        store
            .delete_thumbnail(&ns, &ThumbnailId::parse("in-context").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let mut message = super::message(ns.environment, "while-disabled");
    message.tenant = ns.tenant.clone();
    let job = JobRecord::queued(message.job_id.unwrap(), &message, now);
    store.create_job(&job).await.unwrap();
    store
        .finish_succeeded(job.id, &super::result_for(job.id, 100), now)
        .await
        .unwrap();
    assert!(
        claim(store).await.is_empty(),
        "a disabled endpoint gets nothing"
    );
    store
        .put_webhook(&endpoint(&ns, "all", &EventType::ALL, now))
        .await
        .unwrap();
    assert_eq!(
        store.webhook(&ns, &all).await.unwrap().unwrap().disabled_at,
        None
    );

    // Pending count, purge, delete.
    let pending = store.pending_deliveries().await.unwrap();
    assert!(pending >= 3, "{pending}");
    let purged = store
        .purge_deliveries(Timestamp::now().plus(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(purged, 1, "only the settled delivery");
    assert!(store.delivery(delivery.id).await.unwrap().is_none());
    assert!(
        store
            .list_attempts(&ns, &delivery.webhook_id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.delete_webhook(&ns, &all).await.unwrap());
    assert!(!store.delete_webhook(&ns, &all).await.unwrap());
    assert_eq!(store.webhook(&ns, &all).await.unwrap(), None);
    assert!(
        store.webhook(&other, &all).await.unwrap().is_some(),
        "another tenant's stays"
    );
    assert_eq!(
        store.pending_deliveries().await.unwrap(),
        pending - 4,
        "its four pending deliveries went with it"
    );
}
