//! [`Deliverer`]: posts webhook deliveries from the queue's webhook lane to their endpoints,
//! signed the Standard Webhooks way, retrying on the queue by a schedule, recording every
//! attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use thumbd_fetch::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use thumbd_fetch::{FetchOptions, Fetcher, StatusCode};
use thumbd_jobs::webhooks::{DeliveryMessage, event_body, sign};
use thumbd_jobs::{
    AttemptRecord, DeliveryRecord, DeliveryState, JobQueue, Lease, MetaStore, Timestamp,
    WebhookRecord,
};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::ReplyBody;

/// How a [`Deliverer`] behaves.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Deliveries in flight at once (their own slots: a slow endpoint never holds an image
    /// job back). Default 8.
    pub concurrency: usize,
    /// The waits between attempts (`THUMBD_WEBHOOK_RETRY_SCHEDULE`): one more attempt than
    /// waits. Default 5 s, 30 s, 2 min, 10 min, 1 h, 6 h: seven attempts over 7 h 12 min.
    pub schedule: Vec<Duration>,
    /// The endpoint's connection: the SSRF guard (`allow_private`), a 10 s limit, no
    /// redirect followed.
    pub fetch: FetchOptions,
    /// How long one `lease` call waits before the loop looks at shutdown again.
    pub lease_wait: Duration,
    /// Deliveries of one message no attempt settled (a process died on it) before it is
    /// dead-lettered. Default 5.
    pub max_deliveries: u32,
    /// Where deliveries are counted.
    pub metrics: DeliveryMetrics,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            concurrency: 8,
            schedule: [5, 30, 120, 600, 3600, 21600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            fetch: FetchOptions {
                timeout: Duration::from_secs(10),
                max_redirects: 0,
                ..FetchOptions::default()
            },
            lease_wait: Duration::from_secs(1),
            max_deliveries: 5,
            metrics: DeliveryMetrics::default(),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// Webhook attempts by outcome: `delivered`, `retried`, `failed` (the schedule ran out),
/// `gone` (410: the endpoint disabled), `cancelled` (its endpoint deleted or disabled).
#[derive(Debug, Clone, Default)]
pub struct DeliveryMetrics {
    attempts: Family<OutcomeLabel, Counter>,
}

impl DeliveryMetrics {
    /// Adds the counter to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts and cancellations, by outcome (delivered, retried, failed, gone, cancelled)",
            self.attempts.clone(),
        );
    }

    fn count(&self, outcome: &'static str) {
        self.attempts.get_or_create(&OutcomeLabel { outcome }).inc();
    }
}

/// What became of one message of the webhook lane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The endpoint answered 2xx.
    Delivered {
        /// The delivery.
        delivery: i64,
    },
    /// Not this time; the queue brings it back after `delay`.
    Retried {
        /// The delivery.
        delivery: i64,
        /// Until the next attempt.
        delay: Duration,
    },
    /// No more attempts: the schedule ran out, or the endpoint answered 410.
    Failed {
        /// The delivery.
        delivery: i64,
    },
    /// Nothing to do: already settled, its endpoint deleted or disabled.
    Skipped,
    /// The message was unreadable, or processes died on it: set aside.
    DeadLettered,
    /// The lease was lost (another delivery of the message will come).
    LeaseLost,
}

/// Posts deliveries: see the module documentation.
pub struct Deliverer {
    queue: Arc<dyn JobQueue>,
    store: Arc<dyn MetaStore>,
    fetcher: Fetcher,
    status_body: ReplyBody,
    options: DeliveryOptions,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer consuming `queue` (the webhook lane); job events carry `status_body` of
    /// the job (the API's status JSON, as a `replyTo` reply does).
    pub fn new(
        queue: Arc<dyn JobQueue>,
        store: Arc<dyn MetaStore>,
        status_body: ReplyBody,
        options: DeliveryOptions,
    ) -> Self {
        Deliverer {
            queue,
            store,
            fetcher: Fetcher::new(options.fetch.clone()),
            status_body,
            options,
        }
    }

    /// Runs until `shutdown` is cancelled, `concurrency` deliveries at a time; then returns
    /// once those in hand are settled.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        let mut failures = 0u32;
        loop {
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot.expect("never closed"),
                () = shutdown.cancelled() => break,
            };
            match self.queue.lease(self.options.lease_wait).await {
                Ok(Some(lease)) => {
                    failures = 0;
                    let this = self.clone();
                    tasks.spawn(async move {
                        let outcome = this.process_one(lease).await;
                        drop(slot);
                        outcome
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let nap = Duration::from_secs(1 << failures.min(5));
                    tracing::error!(error = %e, retry_in = ?nap, "cannot lease webhook deliveries");
                    tokio::select! {
                        () = tokio::time::sleep(nap) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
            }
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Leases and processes deliveries until none comes for `lease_wait` (tests).
    pub async fn drain(&self) -> Vec<DeliveryOutcome> {
        let mut outcomes = Vec::new();
        while let Ok(Some(lease)) = self.queue.lease(self.options.lease_wait).await {
            outcomes.push(self.process_one(lease).await);
        }
        outcomes
    }

    /// One message of the webhook lane, to its settlement.
    pub async fn process_one(&self, lease: Lease) -> DeliveryOutcome {
        let message = match DeliveryMessage::parse(&lease.payload) {
            Ok(m) => m,
            Err(e) => {
                return self
                    .dead_letter(&lease, &format!("malformed message: {e}"))
                    .await;
            }
        };
        if lease.deliveries > self.options.max_deliveries {
            let reason = format!(
                "gave up after {} deliveries no process settled",
                lease.deliveries - 1
            );
            self.give_up(message.delivery, &reason).await;
            return self.dead_letter(&lease, &reason).await;
        }
        match self.attempt(&lease, message.delivery).await {
            Ok(outcome) => outcome,
            Err(e) => {
                // The store is down: try again after the schedule's first wait (a retry queue
                // exists for it), counting nothing.
                let delay = self
                    .options
                    .schedule
                    .first()
                    .copied()
                    .unwrap_or(Duration::from_secs(5));
                tracing::warn!(delivery = message.delivery, error = %e, retry_in = ?delay, "webhook delivery postponed");
                match self.queue.put_back(&lease, delay).await {
                    Ok(true) => DeliveryOutcome::Retried {
                        delivery: message.delivery,
                        delay,
                    },
                    _ => DeliveryOutcome::LeaseLost,
                }
            }
        }
    }

    async fn attempt(&self, lease: &Lease, id: i64) -> thumbd_jobs::Result<DeliveryOutcome> {
        let Some(delivery) = self.store.delivery(id).await? else {
            // Its endpoint was deleted, and the delivery with it.
            return Ok(self.ack(lease, DeliveryOutcome::Skipped).await);
        };
        if delivery.state != DeliveryState::Pending {
            return Ok(self.ack(lease, DeliveryOutcome::Skipped).await);
        }
        let webhook = self
            .store
            .webhook(&delivery.namespace, &delivery.webhook_id)
            .await?;
        let Some(webhook) = webhook.filter(|w| w.disabled_at.is_none()) else {
            let attempt = self.record(
                &delivery,
                Timestamp::now(),
                None,
                Some("the endpoint is disabled (it answered 410 Gone)".into()),
                Duration::ZERO,
                None,
            );
            self.store
                .record_attempt(&attempt, DeliveryState::Cancelled)
                .await?;
            self.options.metrics.count("cancelled");
            return Ok(self.ack(lease, DeliveryOutcome::Skipped).await);
        };

        let body = self.body(&delivery).await?;
        let at = Timestamp::now();
        let started = Instant::now();
        let answer = self.post(&webhook, &delivery, body).await;
        let took = started.elapsed();
        let attempt_no = delivery.attempts.saturating_add(1);
        let (status, error) = match &answer {
            Ok(status) if status.is_success() => (Some(status.as_u16()), None),
            Ok(status) => (
                Some(status.as_u16()),
                Some(format!("the endpoint answered {status}")),
            ),
            Err(e) => (None, Some(e.endpoint_message())),
        };
        let (state, outcome, next) = match answer {
            Ok(status) if status.is_success() => {
                self.options.metrics.count("delivered");
                (
                    DeliveryState::Delivered,
                    DeliveryOutcome::Delivered { delivery: id },
                    None,
                )
            }
            Ok(StatusCode::GONE) => {
                self.store
                    .disable_webhook(&webhook.namespace, &webhook.id, Timestamp::now())
                    .await?;
                tracing::warn!(webhook_id = %webhook.id, namespace = %webhook.namespace, "webhook endpoint answered 410 Gone: disabled");
                self.options.metrics.count("gone");
                (
                    DeliveryState::Failed,
                    DeliveryOutcome::Failed { delivery: id },
                    None,
                )
            }
            _ => match self.options.schedule.get(attempt_no as usize - 1) {
                Some(&delay) => {
                    self.options.metrics.count("retried");
                    (
                        DeliveryState::Pending,
                        DeliveryOutcome::Retried {
                            delivery: id,
                            delay,
                        },
                        Some(delay),
                    )
                }
                None => {
                    self.options.metrics.count("failed");
                    (
                        DeliveryState::Failed,
                        DeliveryOutcome::Failed { delivery: id },
                        None,
                    )
                }
            },
        };
        let attempt = self.record(
            &delivery,
            at,
            status,
            error,
            took,
            next.map(|d| Timestamp::now().plus(d)),
        );
        self.store.record_attempt(&attempt, state).await?;
        tracing::info!(delivery = id, webhook_id = %webhook.id, event = delivery.kind.as_str(), attempt = attempt_no, status = ?status, state = state.as_str(), "webhook attempt");
        Ok(match next {
            Some(delay) => match self.queue.retry(lease, delay).await {
                Ok(true) => outcome,
                _ => DeliveryOutcome::LeaseLost,
            },
            None => self.ack(lease, outcome).await,
        })
    }

    /// The event's body: for job events the job's status body (a job purged meanwhile
    /// leaves its id and nothing else).
    async fn body(&self, delivery: &DeliveryRecord) -> thumbd_jobs::Result<Bytes> {
        let data = match (&delivery.job, &delivery.data) {
            (Some(job), _) => match self.store.job(*job).await? {
                Some(record) => serde_json::from_slice((self.status_body)(&record).as_slice())?,
                None => serde_json::json!({ "jobId": job.to_string() }),
            },
            (None, Some(data)) => serde_json::from_str(data)?,
            (None, None) => serde_json::Value::Null,
        };
        Ok(Bytes::from(event_body(
            delivery.kind,
            delivery.created_at,
            &data,
        )))
    }

    async fn post(
        &self,
        webhook: &WebhookRecord,
        delivery: &DeliveryRecord,
        body: Bytes,
    ) -> Result<StatusCode, thumbd_fetch::FetchError> {
        let timestamp = Timestamp::now().0.div_euclid(1000);
        let signature = sign(&webhook.secret, &delivery.event_id, timestamp, &body);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in [
            ("webhook-id", delivery.event_id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        self.fetcher.post(&webhook.url, headers, body).await
    }

    /// The record of the next attempt at `delivery` (a cancellation or a give-up counts as
    /// one: it is what the endpoint's listing shows last).
    fn record(
        &self,
        delivery: &DeliveryRecord,
        at: Timestamp,
        status: Option<u16>,
        error: Option<String>,
        took: Duration,
        next_retry_at: Option<Timestamp>,
    ) -> AttemptRecord {
        AttemptRecord {
            delivery_id: delivery.id,
            namespace: delivery.namespace.clone(),
            webhook_id: delivery.webhook_id.clone(),
            event_id: delivery.event_id.clone(),
            kind: delivery.kind,
            attempt: delivery.attempts.saturating_add(1),
            at,
            status,
            error,
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            next_retry_at,
        }
    }

    /// Records delivery `id` failed with `reason` (its message is about to be set aside), so
    /// it does not stay pending for ever.
    async fn give_up(&self, id: i64, reason: &str) {
        let delivery = match self.store.delivery(id).await {
            Ok(Some(d)) if d.state == DeliveryState::Pending => d,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(delivery = id, error = %e, "cannot record a delivery given up");
                return;
            }
        };
        let attempt = self.record(
            &delivery,
            Timestamp::now(),
            None,
            Some(reason.to_owned()),
            Duration::ZERO,
            None,
        );
        if let Err(e) = self
            .store
            .record_attempt(&attempt, DeliveryState::Failed)
            .await
        {
            tracing::warn!(delivery = id, error = %e, "cannot record a delivery given up");
        }
        self.options.metrics.count("failed");
    }

    async fn ack(&self, lease: &Lease, outcome: DeliveryOutcome) -> DeliveryOutcome {
        match self.queue.ack(lease).await {
            Ok(true) => outcome,
            _ => DeliveryOutcome::LeaseLost,
        }
    }

    async fn dead_letter(&self, lease: &Lease, reason: &str) -> DeliveryOutcome {
        tracing::warn!(reason, "dead-lettering a webhook delivery");
        match self.queue.dead_letter(lease, reason).await {
            Ok(true) => DeliveryOutcome::DeadLettered,
            _ => DeliveryOutcome::LeaseLost,
        }
    }
}
