//! The [`MetaStore`] checks for idempotency keys, uploads and contexts (run by
//! [`meta_store`](super::meta_store)).

use std::time::Duration;

use super::{message, queued, result_for};
use crate::associations::{Claim, ContextChange, ContextRecord, IdempotencyKey, UploadRecord};
use crate::ids::{BlobKey, ContextId, Environment, Namespace, Tenant, ThumbnailId, UploadTicket};
use crate::job::{JobRecord, ThumbnailRecord};
use crate::store::MetaStore;
use crate::timestamp::Timestamp;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn key(client: &str, environment: Environment, key: &str) -> IdempotencyKey {
    IdempotencyKey {
        client: client.into(),
        tenant: Tenant::default(),
        environment,
        key: key.into(),
    }
}

/// Runs the idempotency-key checks; `store` holds no keys yet.
pub(super) async fn idempotency(store: &dyn MetaStore, now: Timestamp) {
    let env = Environment::Development;
    let fresh = now.minus(DAY);
    let job = |id: &str, at: u64| queued(message(env, id), now.plus(Duration::from_millis(at)));
    let k = key("client-a", env, "key-1");
    assert_eq!(store.idempotent_job(&k, fresh).await.unwrap(), None);

    // The first create claims the key; a second within the window gets the first job and
    // creates nothing.
    let first = job("idem", 0);
    let claim = store.create_job_idempotent(&first, &k, fresh).await;
    assert_eq!(claim.unwrap(), Claim::Created, "a free key creates");
    assert_eq!(store.job(first.id).await.unwrap().as_ref(), Some(&first));
    assert_eq!(
        store.idempotent_job(&k, fresh).await.unwrap(),
        Some(first.id)
    );
    let second = job("idem", 1);
    let claim = store.create_job_idempotent(&second, &k, fresh).await;
    assert_eq!(claim.unwrap(), Claim::Existing(first.id), "a fresh key");
    assert_eq!(
        store.job(second.id).await.unwrap(),
        None,
        "an idempotent repeat creates no job"
    );

    // Once `fresh_after` reaches the key's time it is stale: replaced by the next create.
    let stale_at = first.created_at;
    assert_eq!(store.idempotent_job(&k, stale_at).await.unwrap(), None);
    assert_eq!(
        store
            .idempotent_job(&k, stale_at.minus(Duration::from_millis(1)))
            .await
            .unwrap(),
        Some(first.id),
        "recorded after fresh_after is fresh"
    );
    let third = job("idem", 2);
    let claim = store.create_job_idempotent(&third, &k, stale_at).await;
    assert_eq!(claim.unwrap(), Claim::Created, "a stale key is replaced");
    assert!(store.job(third.id).await.unwrap().is_some());
    assert_eq!(
        store.idempotent_job(&k, fresh).await.unwrap(),
        Some(third.id)
    );

    // Per client, per environment, per key.
    let others = [
        key("client-b", env, "key-1"),
        key("client-a", Environment::Production, "key-1"),
        key("client-a", env, "key-2"),
        key("ü\0 client", env, "k\0é 🔑"),
    ];
    for (i, other) in (3..).zip(&others) {
        let j = job("idem", i);
        let claim = store.create_job_idempotent(&j, other, fresh).await;
        assert_eq!(claim.unwrap(), Claim::Created, "{other:?} is its own key");
        assert_eq!(
            store.idempotent_job(other, fresh).await.unwrap(),
            Some(j.id),
            "{other:?}"
        );
    }
    assert_eq!(
        store.idempotent_job(&k, fresh).await.unwrap(),
        Some(third.id),
        "other keys leave this one alone"
    );

    // Release frees the key only while it names that job.
    store.release_idempotency_key(&k, first.id).await.unwrap();
    assert_eq!(
        store.idempotent_job(&k, fresh).await.unwrap(),
        Some(third.id),
        "releasing for a job the key no longer names changes nothing"
    );
    store.release_idempotency_key(&k, third.id).await.unwrap();
    assert_eq!(store.idempotent_job(&k, fresh).await.unwrap(), None);
    let fourth = job("idem", 10);
    let claim = store.create_job_idempotent(&fourth, &k, fresh).await;
    assert_eq!(claim.unwrap(), Claim::Created, "a released key is free");

    // Purge: keys recorded before the cut-off. `k` (at +10 ms) and the four others (+3..+6).
    assert_eq!(store.purge_idempotency_keys(now).await.unwrap(), 0);
    let cut = now.plus(Duration::from_millis(10));
    assert_eq!(store.purge_idempotency_keys(cut).await.unwrap(), 4);
    assert_eq!(store.idempotent_job(&others[0], fresh).await.unwrap(), None);
    assert_eq!(
        store.idempotent_job(&k, fresh).await.unwrap(),
        Some(fourth.id),
        "recorded at the cut-off is not before it"
    );
    let later = cut.plus(Duration::from_millis(1));
    assert_eq!(store.purge_idempotency_keys(later).await.unwrap(), 1);
    assert_eq!(store.idempotent_job(&k, fresh).await.unwrap(), None);
}

fn upload(now: Timestamp, expires_in_ms: u64) -> UploadRecord {
    let ticket = UploadTicket::generate();
    UploadRecord {
        blob_key: BlobKey::upload(&ticket),
        ticket,
        tenant: Tenant::parse("uploader").unwrap(),
        environment: Some(Environment::Production),
        content_type: "image/jpeg".into(),
        bytes: 5_000_000_000 + expires_in_ms,
        created_at: now,
        expires_at: now.plus(Duration::from_millis(expires_in_ms)),
    }
}

fn tickets(uploads: Vec<UploadRecord>) -> Vec<UploadTicket> {
    let mut tickets: Vec<_> = uploads.into_iter().map(|u| u.ticket).collect();
    tickets.sort();
    tickets
}

/// Runs the upload checks; `store` holds no uploads yet.
pub(super) async fn uploads(store: &dyn MetaStore, now: Timestamp) {
    let at = |ms| now.plus(Duration::from_millis(ms));
    let [a, b, c] = [1000, 2000, 3000].map(|ms| upload(now, ms));
    for u in [&a, &b, &c] {
        store.create_upload(u).await.unwrap();
    }
    assert_eq!(
        store.upload(&a.ticket, now).await.unwrap().as_ref(),
        Some(&a)
    );
    assert_eq!(
        store.upload(&a.ticket, at(999)).await.unwrap().as_ref(),
        Some(&a)
    );
    assert_eq!(
        store.upload(&a.ticket, at(1000)).await.unwrap(),
        None,
        "expired at expires_at"
    );
    let unknown = UploadTicket::generate();
    assert_eq!(store.upload(&unknown, now).await.unwrap(), None);

    // Purge: the expired ones only, removed.
    assert_eq!(store.purge_expired_uploads(at(999), 10).await.unwrap(), []);
    let purged = store.purge_expired_uploads(at(2000), 10).await.unwrap();
    let mut expected = vec![a.ticket.clone(), b.ticket.clone()];
    expected.sort();
    assert_eq!(tickets(purged.clone()), expected, "expired ones, not c");
    assert!(purged.contains(&a) && purged.contains(&b), "whole records");
    assert_eq!(store.upload(&a.ticket, now).await.unwrap(), None, "removed");
    assert_eq!(
        store.upload(&c.ticket, now).await.unwrap().as_ref(),
        Some(&c)
    );
    assert_eq!(store.purge_expired_uploads(at(2000), 10).await.unwrap(), []);

    // Limit.
    let [d, e] = [100, 200].map(|ms| upload(now, ms));
    for u in [&d, &e] {
        store.create_upload(u).await.unwrap();
    }
    let one = store.purge_expired_uploads(at(5000), 1).await.unwrap();
    assert_eq!(one.len(), 1, "limit");
    let rest = store.purge_expired_uploads(at(5000), 10).await.unwrap();
    assert_eq!(rest.len(), 2);
    let mut expected = vec![c.ticket, d.ticket, e.ticket];
    expected.sort();
    assert_eq!(tickets([one, rest].concat()), expected, "each once");
}

/// A current thumbnail `id` made the way the worker makes one.
async fn thumbnail(
    store: &dyn MetaStore,
    env: Environment,
    id: &str,
    now: Timestamp,
) -> ThumbnailRecord {
    let job: JobRecord = queued(message(env, id), now);
    assert!(store.create_job(&job).await.unwrap());
    store.start_job(job.id, now).await.unwrap();
    let fin = store
        .finish_succeeded(job.id, &result_for(job.id, 120), now)
        .await
        .unwrap();
    assert!(fin.applied && fin.current, "{id:?}: {fin:?}");
    store
        .thumbnail(&Namespace::default_tenant(env), &job.thumbnail_id)
        .await
        .unwrap()
        .expect("a finished job's thumbnail")
}

fn context(env: Environment, id: &str, thumbnail: &str, at: Timestamp) -> ContextRecord {
    ContextRecord {
        tenant: Tenant::default(),
        environment: env,
        context_id: ContextId::parse(id).unwrap(),
        thumbnail_id: ThumbnailId::parse(thumbnail).unwrap(),
        body: format!(r#"{{"thumbnailId": {thumbnail:?}, "title": "ü"}}"#),
        created_at: at,
        updated_at: at,
    }
}

/// `put_context` that must succeed.
async fn put(store: &dyn MetaStore, c: &ContextRecord) -> ContextChange {
    store.put_context(c).await.expect("put_context")
}

/// `delete_context` of a context that must exist.
async fn delete(store: &dyn MetaStore, env: Environment, id: &str) -> ContextChange {
    let id = ContextId::parse(id).unwrap();
    store
        .delete_context(&Namespace::default_tenant(env), &id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("context {id:?} to delete"))
}

async fn exists(store: &dyn MetaStore, t: &ThumbnailRecord) -> bool {
    let found = store
        .thumbnail(&Namespace::default_tenant(t.environment), &t.thumbnail_id)
        .await;
    found.unwrap().is_some()
}

/// Runs the context checks; `store` holds no contexts and no `ctx-…` thumbnails yet.
pub(super) async fn contexts(store: &dyn MetaStore, now: Timestamp) {
    let env = Environment::Development;
    let later = now.plus(Duration::from_secs(5));
    let untouched = thumbnail(store, env, "ctx-never-referenced", now).await;
    let shared = thumbnail(store, env, "ctx-shared", now).await;
    let c1_id = ContextId::parse("ctx-1").unwrap();
    assert_eq!(
        store
            .context(&Namespace::default_tenant(env), &c1_id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .delete_context(&Namespace::default_tenant(env), &c1_id)
            .await
            .unwrap(),
        None
    );

    // Create; replace keeps created_at; re-pointing to the same thumbnail deletes nothing.
    let c1 = context(env, "ctx-1", "ctx-shared", now);
    assert_eq!(
        put(store, &c1).await,
        ContextChange::default(),
        "a new context"
    );
    assert_eq!(
        store
            .context(&Namespace::default_tenant(env), &c1_id)
            .await
            .unwrap()
            .as_ref(),
        Some(&c1)
    );
    let mut c1b = context(env, "ctx-1", "ctx-shared", later);
    c1b.body = r#"{"thumbnailId":"ctx-shared","v":2}"#.into();
    let change = put(store, &c1b).await;
    assert_eq!(change.previous.as_ref(), Some(&c1), "the replaced context");
    assert_eq!(
        change.deleted_thumbnail, None,
        "same thumbnail: nothing deleted"
    );
    let stored = store
        .context(&Namespace::default_tenant(env), &c1_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.created_at, stored.updated_at, &stored.body),
        (now, later, &c1b.body),
        "a replacement keeps the first created_at"
    );
    assert!(exists(store, &shared).await);

    // Two contexts share a thumbnail: it goes with the last of them, once.
    let c2 = context(env, "ctx-2", "ctx-shared", now);
    assert_eq!(put(store, &c2).await.previous, None);
    let change = delete(store, env, "ctx-1").await;
    assert_eq!(change.previous.map(|p| p.body), Some(c1b.body.clone()));
    assert_eq!(change.deleted_thumbnail, None, "ctx-2 still references it");
    assert!(exists(store, &shared).await);
    assert_eq!(
        store
            .delete_context(&Namespace::default_tenant(env), &c1_id)
            .await
            .unwrap(),
        None
    );
    let change = delete(store, env, "ctx-2").await;
    assert_eq!(change.previous.as_ref(), Some(&c2));
    assert_eq!(
        change.deleted_thumbnail.as_ref(),
        Some(&shared),
        "the last reference is gone"
    );
    assert!(!exists(store, &shared).await);

    // Re-pointing the last reference deletes the old thumbnail, not the new one.
    let old = thumbnail(store, env, "ctx-old", now).await;
    let new = thumbnail(store, env, "ctx-new", now).await;
    put(store, &context(env, "ctx-3", "ctx-old", now)).await;
    let change = put(store, &context(env, "ctx-3", "ctx-new", later)).await;
    assert_eq!(
        change.previous.map(|p| p.thumbnail_id.as_str().to_owned()),
        Some("ctx-old".to_owned())
    );
    assert_eq!(change.deleted_thumbnail.as_ref(), Some(&old));
    assert!(!exists(store, &old).await);
    assert!(exists(store, &new).await);

    // Re-pointing one of two references deletes nothing.
    let kept = thumbnail(store, env, "ctx-kept", now).await;
    put(store, &context(env, "ctx-4", "ctx-kept", now)).await;
    put(store, &context(env, "ctx-5", "ctx-kept", now)).await;
    let change = put(store, &context(env, "ctx-4", "ctx-new", later)).await;
    assert_eq!(change.deleted_thumbnail, None, "ctx-5 still references it");
    assert!(exists(store, &kept).await);

    // A context whose thumbnail has no record (its job is still running).
    put(store, &context(env, "ctx-6", "ctx-pending", now)).await;
    let change = delete(store, env, "ctx-6").await;
    assert_eq!(change.deleted_thumbnail, None);

    // Environments are separate: same context id and thumbnail name in both.
    let prod = Environment::Production;
    let dev_thumb = thumbnail(store, env, "ctx-env", now).await;
    let prod_thumb = thumbnail(store, prod, "ctx-env", now).await;
    let dev_ctx = context(env, "ctx-env", "ctx-env", now);
    let prod_ctx = context(prod, "ctx-env", "ctx-env", later);
    assert_eq!(put(store, &dev_ctx).await.previous, None);
    assert_eq!(
        put(store, &prod_ctx).await.previous,
        None,
        "per environment"
    );
    let id = ContextId::parse("ctx-env").unwrap();
    assert_eq!(
        store
            .context(&Namespace::default_tenant(prod), &id)
            .await
            .unwrap()
            .as_ref(),
        Some(&prod_ctx)
    );
    assert_eq!(
        store
            .context(&Namespace::default_tenant(env), &id)
            .await
            .unwrap()
            .as_ref(),
        Some(&dev_ctx)
    );
    let change = delete(store, prod, "ctx-env").await;
    assert_eq!(
        change.deleted_thumbnail.as_ref(),
        Some(&prod_thumb),
        "a reference in another environment does not count"
    );
    assert!(exists(store, &dev_thumb).await);
    let change = delete(store, env, "ctx-env").await;
    assert_eq!(change.deleted_thumbnail.as_ref(), Some(&dev_thumb));

    // Any characters in context and thumbnail ids.
    let odd_thumb = thumbnail(store, prod, "t\0ñ/🖼?", now).await;
    let mut odd = context(prod, "../c\0ü 🖼#%", "t\0ñ/🖼?", now);
    odd.body = r#"{"thumbnailId":"t\u0000ñ/🖼?"}"#.into();
    assert_eq!(put(store, &odd).await.previous, None);
    let found = store
        .context(&Namespace::default_tenant(prod), &odd.context_id)
        .await
        .unwrap();
    assert_eq!(found.as_ref(), Some(&odd), "odd ids round trip");
    let change = delete(store, prod, odd.context_id.as_str()).await;
    assert_eq!(change.deleted_thumbnail.as_ref(), Some(&odd_thumb));

    assert!(
        exists(store, &untouched).await,
        "a thumbnail no context referenced is never deleted by context changes"
    );
}

/// Runs the tenant checks (README, "Tenants"): the same thumbnailId, contextId and
/// idempotency key in
/// two tenants' same environment are separate keys.
pub(super) async fn tenants(store: &dyn MetaStore, now: Timestamp) {
    let env = Environment::Production;
    let acme = Namespace::new(Tenant::parse("acme").unwrap(), env);
    let other = Namespace::new(Tenant::parse("Other.Co_2").unwrap(), env);
    let fresh = now.minus(DAY);
    let in_tenant = |ns: &Namespace, id: &str, at: u64| {
        let mut m = message(env, id);
        m.tenant = ns.tenant.clone();
        queued(m, now.plus(Duration::from_millis(at)))
    };

    // One thumbnailId, two tenants, two thumbnails; each job is current in its own.
    let mut jobs = Vec::new();
    for (at, (ns, width)) in [(&acme, 100), (&other, 200)].into_iter().enumerate() {
        let job = in_tenant(ns, "tenant-shared", at as u64);
        assert!(store.create_job(&job).await.unwrap());
        let read = store.job(job.id).await.unwrap().unwrap();
        assert_eq!(read.tenant, ns.tenant, "a job keeps its tenant");
        store.start_job(job.id, now).await.unwrap();
        let fin = store
            .finish_succeeded(job.id, &result_for(job.id, width), now)
            .await
            .unwrap();
        assert!(
            fin.applied && fin.current && fin.orphaned.is_empty(),
            "{fin:?}"
        );
        jobs.push(job);
    }
    let id = ThumbnailId::parse("tenant-shared").unwrap();
    let width = |t: Option<ThumbnailRecord>| t.map(|t| (t.tenant, t.result.width));
    assert_eq!(
        width(store.thumbnail(&acme, &id).await.unwrap()),
        Some((acme.tenant.clone(), 100))
    );
    assert_eq!(
        width(store.thumbnail(&other, &id).await.unwrap()),
        Some((other.tenant.clone(), 200))
    );
    assert_eq!(
        store
            .thumbnail(&Namespace::default_tenant(env), &id)
            .await
            .unwrap(),
        None,
        "the default tenant is a tenant like any other"
    );
    let deleted = store.delete_thumbnail(&acme, &id).await.unwrap().unwrap();
    assert_eq!(deleted.job_id, jobs[0].id);
    assert!(store.thumbnail(&other, &id).await.unwrap().is_some());

    // One contextId, two tenants.
    let ctx = |ns: &Namespace, thumbnail: &str| ContextRecord {
        tenant: ns.tenant.clone(),
        ..context(env, "tenant-ctx", thumbnail, now)
    };
    assert_eq!(put(store, &ctx(&acme, "a-thumb")).await.previous, None);
    assert_eq!(
        put(store, &ctx(&other, "tenant-shared")).await.previous,
        None
    );
    let cid = ContextId::parse("tenant-ctx").unwrap();
    let read = store.context(&acme, &cid).await.unwrap().unwrap();
    assert_eq!(
        (read.tenant, read.thumbnail_id.as_str()),
        (acme.tenant.clone(), "a-thumb")
    );
    // Deleting acme's context deletes nothing of the other tenant's.
    let change = store.delete_context(&acme, &cid).await.unwrap().unwrap();
    assert_eq!(change.deleted_thumbnail, None);
    assert!(store.context(&other, &cid).await.unwrap().is_some());
    let change = store.delete_context(&other, &cid).await.unwrap().unwrap();
    assert_eq!(
        change.deleted_thumbnail.map(|t| t.tenant),
        Some(other.tenant.clone()),
        "the other tenant's last context took its thumbnail with it"
    );

    // One client and key, two tenants: two jobs.
    let key_in = |ns: &Namespace| IdempotencyKey {
        tenant: ns.tenant.clone(),
        ..key("client-t", env, "same-key")
    };
    let first = in_tenant(&acme, "idem-t", 10);
    let second = in_tenant(&other, "idem-t", 11);
    assert_eq!(
        store
            .create_job_idempotent(&first, &key_in(&acme), fresh)
            .await
            .unwrap(),
        Claim::Created
    );
    assert_eq!(
        store
            .create_job_idempotent(&second, &key_in(&other), fresh)
            .await
            .unwrap(),
        Claim::Created,
        "another tenant's key is another key"
    );
    assert_eq!(
        store.idempotent_job(&key_in(&other), fresh).await.unwrap(),
        Some(second.id)
    );

    // An upload keeps who uploaded it, and for which environment.
    let u = upload(now, 60_000);
    store.create_upload(&u).await.unwrap();
    let read = store.upload(&u.ticket, now).await.unwrap().unwrap();
    assert_eq!((read.tenant, read.environment), (u.tenant, u.environment));
}
