//! Webhooks (README, "Webhooks"): endpoints a namespace registers, the events thumbd
//! announces to them, and the durable deliveries in between.
//!
//! An event is written in the same transaction as the change it announces: a job's finish,
//! a thumbnail's deletion. [`Event::push_insert`] appends one `webhook_deliveries` row per
//! enabled endpoint subscribed to it (none when no endpoint is: the change costs one index
//! probe more). That row is the outbox: a [`Dispatcher`] pushes a message for it onto the
//! webhook lane of the job queue, and the delivery worker (thumbd-worker) posts it,
//! retrying on the queue, recording each attempt. Nothing between the change and the
//! endpoint lives only in memory, so a crash loses no delivery; it may repeat one, with the
//! same `webhook-id`, which is what receivers deduplicate on.

mod dispatch;
mod rows;
mod sign;
pub mod sql;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use dispatch::Dispatcher;
pub use rows::{attempt_from_row, delivery_from_row, webhook_from_row};
pub use sign::{WebhookSecret, sign};

use crate::error::{Error, Result};
use crate::ids::{JobId, Namespace, ThumbnailId};
use crate::timestamp::Timestamp;

/// The queue lane webhook deliveries travel on (the embedded queue's `lane`; with RabbitMQ,
/// queues of their own).
pub const WEBHOOK_LANE: &str = "webhooks";

/// A client's name for a webhook endpoint: 1–64 characters of `A–Z a–z 0–9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookId(String);

impl WebhookId {
    /// Checks the rule.
    pub fn parse(s: &str) -> Result<Self> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(WebhookId(s.to_owned()))
        } else {
            Err(Error::invalid(
                "webhookId",
                "must be 1–64 characters of A–Z, a–z, 0–9, '.', '_' or '-'",
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WebhookId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<WebhookId> for String {
    fn from(v: WebhookId) -> String {
        v.0
    }
}

impl std::fmt::Display for WebhookId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an endpoint can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    /// A job succeeded; data: its status body.
    #[serde(rename = "job.succeeded")]
    JobSucceeded,
    /// A job failed; data: its status body.
    #[serde(rename = "job.failed")]
    JobFailed,
    /// The renditions a job deferred to the background lane (AVIF) were made (ready or
    /// failed); data: the job's status body, as for `job.succeeded`.
    #[serde(rename = "rendition.ready")]
    RenditionReady,
    /// A thumbnail was deleted (by a DELETE, or with its last context); data:
    /// `{thumbnailId, environment}`.
    #[serde(rename = "thumbnail.deleted")]
    ThumbnailDeleted,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 4] = [
        EventType::JobSucceeded,
        EventType::JobFailed,
        EventType::RenditionReady,
        EventType::ThumbnailDeleted,
    ];

    /// The name on the wire (`job.succeeded`…).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::JobSucceeded => "job.succeeded",
            EventType::JobFailed => "job.failed",
            EventType::RenditionReady => "rendition.ready",
            EventType::ThumbnailDeleted => "thumbnail.deleted",
        }
    }

    /// Reads a name back.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| Error::invalid("event", format!("{s:?} is not an event type")))
    }
}

/// A registered endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    /// Whose.
    pub namespace: Namespace,
    /// The client's name for it.
    pub id: WebhookId,
    /// Where events are posted (http or https; the URL-source guard applies).
    pub url: String,
    /// What it is sent, in the order given.
    pub events: Vec<EventType>,
    /// The signing secret, `whsec_…`.
    pub secret: WebhookSecret,
    /// When it was first registered.
    pub created_at: Timestamp,
    /// When it was last registered.
    pub updated_at: Timestamp,
    /// When it answered `410 Gone` and was disabled; a PUT enables it again.
    pub disabled_at: Option<Timestamp>,
}

/// What [`WebhookStore::put_webhook`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// Whose.
    pub namespace: Namespace,
    /// Its name.
    pub id: WebhookId,
    /// Where to post.
    pub url: String,
    /// What to send.
    pub events: Vec<EventType>,
    /// The secret to sign with: a replacement without one keeps the stored secret, a new
    /// endpoint without one gets this generated one ([`WebhookSecret::generate`]).
    pub secret: Option<WebhookSecret>,
    /// Now.
    pub now: Timestamp,
}

impl NewWebhook {
    /// What storing this over `existing` (the stored endpoint, if any) makes: every backend's
    /// [`WebhookStore::put_webhook`] stores what this returns.
    pub fn apply_to(&self, existing: Option<WebhookRecord>) -> WebhookPut {
        match existing {
            None => WebhookPut::Created(WebhookRecord {
                namespace: self.namespace.clone(),
                id: self.id.clone(),
                url: self.url.clone(),
                events: self.events.clone(),
                secret: self.secret.clone().unwrap_or_else(WebhookSecret::generate),
                created_at: self.now,
                updated_at: self.now,
                disabled_at: None,
            }),
            Some(old) => WebhookPut::Replaced(WebhookRecord {
                url: self.url.clone(),
                events: self.events.clone(),
                secret: self.secret.clone().unwrap_or(old.secret),
                updated_at: self.now,
                disabled_at: None,
                ..old
            }),
        }
    }
}

/// What [`WebhookStore::put_webhook`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookPut {
    /// A new endpoint.
    Created(WebhookRecord),
    /// An existing one, replaced (and enabled again if it was disabled).
    Replaced(WebhookRecord),
}

/// An event a transaction announces ([`Event::push_insert`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `webhook-id` every endpoint gets for it: the same on every attempt, and for job
    /// events the same whichever delivery of the job's message finished it.
    pub id: String,
    /// Which.
    pub kind: EventType,
    /// For job events: the job (its status body is the data).
    pub job: Option<JobId>,
    /// For other events: the data, JSON.
    pub data: Option<String>,
    /// When it happened.
    pub at: Timestamp,
}

impl Event {
    /// Job `id` finished as `kind` (`job.succeeded` or `job.failed`).
    pub fn job(kind: EventType, id: JobId, at: Timestamp) -> Self {
        Event {
            id: format!("msg_{}_{}", id.to_string().replace('-', ""), kind.as_str()),
            kind,
            job: Some(id),
            data: None,
            at,
        }
    }

    /// Thumbnail `id` of `namespace` was deleted.
    pub fn thumbnail_deleted(namespace: &Namespace, id: &ThumbnailId, at: Timestamp) -> Self {
        let data = serde_json::json!({
            "thumbnailId": id.as_str(),
            "environment": namespace.environment.as_str(),
        });
        Event {
            id: format!("msg_{:032x}", rand::random::<u128>()),
            kind: EventType::ThumbnailDeleted,
            job: None,
            data: Some(data.to_string()),
            at,
        }
    }
}

/// A delivery's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not delivered yet; attempts continue.
    Pending,
    /// An attempt got a 2xx.
    Delivered,
    /// Every attempt of the schedule failed, or the endpoint answered 410.
    Failed,
    /// Its endpoint was deleted or disabled before it was delivered.
    Cancelled,
}

impl DeliveryState {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    /// Reads a stored name back.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "pending" => Ok(DeliveryState::Pending),
            "delivered" => Ok(DeliveryState::Delivered),
            "failed" => Ok(DeliveryState::Failed),
            "cancelled" => Ok(DeliveryState::Cancelled),
            other => Err(Error::Damaged(format!("delivery state {other:?}"))),
        }
    }
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The row's id: what the queue message carries.
    pub id: i64,
    /// The endpoint's namespace.
    pub namespace: Namespace,
    /// The endpoint.
    pub webhook_id: WebhookId,
    /// The event's id (`webhook-id`).
    pub event_id: String,
    /// The event's type.
    pub kind: EventType,
    /// For job events, the job.
    pub job: Option<JobId>,
    /// For other events, the data (JSON).
    pub data: Option<String>,
    /// When the event happened (the body's `timestamp`).
    pub created_at: Timestamp,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
}

/// One attempt at a delivery, as `GET /v1/webhooks/{id}/deliveries` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery_id: i64,
    /// The endpoint's namespace.
    pub namespace: Namespace,
    /// The endpoint.
    pub webhook_id: WebhookId,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub kind: EventType,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it started.
    pub at: Timestamp,
    /// The endpoint's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why there is no status (or why it counts as a failure), otherwise.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: u64,
    /// When the next attempt is due; none when this one delivered or was the last.
    pub next_retry_at: Option<Timestamp>,
}

/// Webhook endpoints and their deliveries. Part of [`MetaStore`](crate::MetaStore).
///
/// Contract: `conformance::webhooks` (feature `testing`).
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Creates or replaces an endpoint ([`NewWebhook`]).
    async fn put_webhook(&self, webhook: &NewWebhook) -> Result<WebhookPut>;

    /// The endpoint, if registered.
    async fn webhook(&self, namespace: &Namespace, id: &WebhookId)
    -> Result<Option<WebhookRecord>>;

    /// Every endpoint of `namespace`, by id.
    async fn list_webhooks(&self, namespace: &Namespace) -> Result<Vec<WebhookRecord>>;

    /// Deletes an endpoint, with its deliveries and their attempts; `false` if there was none.
    async fn delete_webhook(&self, namespace: &Namespace, id: &WebhookId) -> Result<bool>;

    /// Disables an endpoint (it answered `410 Gone`): no event is written for it until a PUT.
    async fn disable_webhook(
        &self,
        namespace: &Namespace,
        id: &WebhookId,
        now: Timestamp,
    ) -> Result<()>;

    /// Claims up to `limit` deliveries whose message is not known to be pushed and whose
    /// dispatch time has come: each claimed one becomes due again at `retry_at` (should its
    /// dispatcher die), and is returned. Safe with several dispatchers: a delivery is
    /// claimed by one at a time.
    async fn claim_dispatch(
        &self,
        now: Timestamp,
        retry_at: Timestamp,
        limit: u32,
    ) -> Result<Vec<i64>>;

    /// Records that the messages of `ids` are in the queue.
    async fn mark_dispatched(&self, ids: &[i64]) -> Result<()>;

    /// The delivery, if it exists.
    async fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>>;

    /// Records an attempt at its delivery, and the delivery's new state.
    async fn record_attempt(&self, attempt: &AttemptRecord, state: DeliveryState) -> Result<()>;

    /// Up to `limit` attempts at the endpoint's deliveries, newest first.
    async fn list_attempts(
        &self,
        namespace: &Namespace,
        id: &WebhookId,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>>;

    /// Deliveries still pending, across namespaces (for `/metrics`).
    async fn pending_deliveries(&self) -> Result<u64>;

    /// Deletes deliveries (and their attempts) created before `before` that are no longer
    /// pending; returns how many.
    async fn purge_deliveries(&self, before: Timestamp) -> Result<u64>;
}

/// The body posted for an event: `{"type", "timestamp", "data"}` (README, "Webhooks").
pub fn event_body(kind: EventType, at: Timestamp, data: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "type": kind.as_str(),
        "timestamp": at.to_rfc3339(),
        "data": data,
    }))
    .expect("a JSON value serialises")
}

/// The body of a webhook lane message: which delivery to attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryMessage {
    /// The `webhook_deliveries` row.
    pub delivery: i64,
}

impl DeliveryMessage {
    /// Parses a message body.
    pub fn parse(body: &[u8]) -> Result<Self> {
        serde_json::from_slice(body).map_err(|e| Error::invalid("message", e.to_string()))
    }

    /// The JSON body.
    pub fn to_json(self) -> Vec<u8> {
        serde_json::to_vec(&self).expect("serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_event_names() {
        assert!(WebhookId::parse("orders-1.prod_A").is_ok());
        for bad in ["", "a b", "é", &"x".repeat(65)] {
            assert!(WebhookId::parse(bad).is_err(), "{bad:?}");
        }
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()).unwrap(), t);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
        assert!(EventType::parse("job.started").is_err());
    }

    #[test]
    fn a_job_event_has_the_same_id_whoever_finishes_it() {
        let id = JobId::new();
        let a = Event::job(EventType::JobSucceeded, id, Timestamp(1));
        let b = Event::job(EventType::JobSucceeded, id, Timestamp(2));
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, Event::job(EventType::JobFailed, id, Timestamp(1)).id);
        assert!(a.id.starts_with("msg_"));
    }
}
