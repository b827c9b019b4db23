//! `AmqpJobQueue`: the [`JobQueue`] role on a RabbitMQ quorum queue.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer};
use thumbd_jobs::{Error, JobQueue, Lease, LeaseToken, QueueDepth, Result};
use tokio::sync::Mutex;

use crate::headers;
use crate::link::Link;
use crate::options::AmqpOptions;
use crate::topology::{ROUTING_KEY, Topology};

const BACKEND: &str = "RabbitMQ";

/// A [`JobQueue`] on RabbitMQ. Connects lazily, and again after the connection dies.
///
/// A lease is tied to the connection it came on: when that connection dies the broker
/// returns the message to the queue, and the lease's `ack`, `retry` and `dead_letter`
/// answer `false` without doing anything.
pub struct AmqpJobQueue {
    uri: AMQPUri,
    shown_url: String,
    options: AmqpOptions,
    topology: Topology,
    link: Mutex<Option<Arc<Link>>>,
    generations: AtomicU64,
}

impl std::fmt::Debug for AmqpJobQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpJobQueue")
            .field("url", &self.shown_url)
            .field("topology", &self.topology)
            .finish_non_exhaustive()
    }
}

impl AmqpJobQueue {
    /// A queue on the broker at `url` (`amqp://user:pass@host:port/vhost`). Does not connect
    /// yet: the first operation does, and declares the topology.
    pub fn new(url: &str, options: AmqpOptions) -> Result<Self> {
        let mut uri: AMQPUri = url.parse().map_err(|reason: String| Error::Invalid {
            what: "amqp_url",
            reason,
        })?;
        if uri.query.heartbeat.is_none() {
            uri.query.heartbeat =
                Some(u16::try_from(options.heartbeat.as_secs().max(1)).unwrap_or(u16::MAX));
        }
        Ok(AmqpJobQueue {
            shown_url: thumbd_jobs::redact(url),
            topology: Topology::new(&options),
            uri,
            options,
            link: Mutex::new(None),
            generations: AtomicU64::new(0),
        })
    }

    /// Connects now (and declares the topology), so a bad URL or a down broker shows at
    /// start-up rather than at the first job.
    pub async fn connect(&self) -> Result<()> {
        self.link().await.map(|_| ())
    }

    /// The names in use.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Stops consuming and closes the connection. Unsettled leases go back to the queue.
    pub async fn close(&self) {
        let link = self.link.lock().await.take();
        if let Some(link) = link {
            if let Some(consumer) = link.consumer.lock().await.take() {
                let _ = link
                    .consuming
                    .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                    .await;
            }
            let _ = link.connection.close(200, "thumbd closing".into()).await;
        }
    }

    /// Deletes every queue and exchange of this namespace (tests and tools).
    pub async fn delete_topology(&self) -> Result<()> {
        let link = self.link().await?;
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        self.topology.delete(&channel).await.map_err(unavailable)?;
        let _ = channel.close(200, "done".into()).await;
        drop(link);
        self.close().await;
        Ok(())
    }

    /// The current connection, made if there is none or it died.
    async fn link(&self) -> Result<Arc<Link>> {
        let mut slot = self.link.lock().await;
        if let Some(link) = slot.as_ref() {
            if link.alive() {
                return Ok(link.clone());
            }
            tracing::warn!(url = %self.shown_url, "RabbitMQ connection lost; reconnecting");
        }
        *slot = None;
        let link = tokio::time::timeout(self.options.publish_timeout, self.open())
            .await
            .map_err(|_| {
                Error::unavailable(
                    BACKEND,
                    format!(
                        "no connection to {} within {:?}",
                        self.shown_url, self.options.publish_timeout
                    ),
                )
            })??;
        let link = Arc::new(link);
        *slot = Some(link.clone());
        Ok(link)
    }

    async fn open(&self) -> Result<Link> {
        let properties = ConnectionProperties::default()
            .with_connection_name(LongString::from(format!("thumbd {}", std::process::id())));
        let connection = Connection::connect_uri(self.uri.clone(), properties)
            .await
            .map_err(|e| Error::unavailable(BACKEND, format!("{}: {e}", self.shown_url)))?;
        let publisher = connection.create_channel().await.map_err(unavailable)?;
        self.topology
            .declare(&publisher)
            .await
            .map_err(unavailable)?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        let consuming = connection.create_channel().await.map_err(unavailable)?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(url = %self.shown_url, generation, "connected to RabbitMQ");
        Ok(Link {
            generation,
            connection,
            publisher,
            consuming,
            consumer: Mutex::new(None),
            leased: std::sync::Mutex::new(HashSet::new()),
        })
    }

    /// The current connection if it is alive; never connects.
    async fn current(&self) -> Option<Arc<Link>> {
        self.link.lock().await.clone().filter(|l| l.alive())
    }

    /// Forgets `link` (if still current) so the next operation reconnects.
    async fn drop_link(&self, link: &Link) {
        let mut slot = self.link.lock().await;
        if slot
            .as_ref()
            .is_some_and(|l| l.generation == link.generation)
        {
            *slot = None;
        }
        let _ = link
            .connection
            .close(320, "thumbd reconnecting".into())
            .await;
    }

    /// Publishes persistently (`mandatory`: an unroutable message is an error) and waits for
    /// the broker's confirm.
    async fn publish(
        &self,
        link: &Link,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        headers: FieldTable,
        mandatory: bool,
    ) -> Result<()> {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_headers(headers);
        let confirmed = async {
            link.publisher
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions {
                        mandatory,
                        ..BasicPublishOptions::default()
                    },
                    payload,
                    properties,
                )
                .await?
                .await
        };
        match tokio::time::timeout(self.options.publish_timeout, confirmed).await {
            Err(_) => Err(Error::unavailable(
                BACKEND,
                format!(
                    "no publisher confirm within {:?} (is the broker blocking publishers on a memory or disk alarm?)",
                    self.options.publish_timeout
                ),
            )),
            Ok(Err(e)) => {
                self.drop_link(link).await;
                Err(unavailable(e))
            }
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(Confirmation::Ack(Some(_)))) => Err(Error::unavailable(
                BACKEND,
                format!("message to {exchange:?} / {routing_key:?} was unroutable: no queue bound"),
            )),
            Ok(Ok(Confirmation::Nack(_))) => Err(Error::unavailable(
                BACKEND,
                "the broker refused the message (nack: queue full or unavailable)",
            )),
            Ok(Ok(Confirmation::NotRequested)) => Err(Error::unavailable(
                BACKEND,
                "publisher confirms are off on this channel",
            )),
        }
    }

    async fn start_consuming(&self, link: &Link) -> Result<Consumer> {
        link.consuming
            .basic_qos(
                self.options.prefetch.max(1),
                BasicQosOptions { global: false },
            )
            .await
            .map_err(unavailable)?;
        link.consuming
            .basic_consume(
                self.topology.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)
    }

    async fn message_count(&self, channel: &Channel, queue: &str) -> Result<u64> {
        let q = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        Ok(q.message_count().into())
    }

    /// Sends `lease`'s message to the delay queue for `delay`, then acks the delivery. A
    /// message given back is not a lost delivery: the copy carries this delivery's count,
    /// not one more, and `retries`.
    async fn give_back(&self, lease: &Lease, delay: Duration, retries: u32) -> Result<bool> {
        let queue = self.topology.retry_queue(delay).to_owned();
        let mut headers = FieldTable::default();
        headers.insert(
            headers::THUMBD_RETRIES.into(),
            AMQPValue::LongLongInt(retries.into()),
        );
        // Through the default exchange, straight to the delay queue.
        self.forward(
            lease,
            lease.deliveries.saturating_sub(1),
            "",
            &queue,
            headers,
        )
        .await
    }

    /// Publishes `lease`'s message to `exchange` with `headers` (and `deliveries` so far),
    /// then acks the delivery.
    async fn forward(
        &self,
        lease: &Lease,
        deliveries: u32,
        exchange: &str,
        routing_key: &str,
        mut headers: FieldTable,
    ) -> Result<bool> {
        let Some(link) = self.current().await else {
            return Ok(false);
        };
        if !link.holds(lease) {
            return Ok(false);
        }
        headers.insert(
            headers::THUMBD_DELIVERIES.into(),
            AMQPValue::LongLongInt(deliveries.into()),
        );
        self.publish(&link, exchange, routing_key, &lease.payload, headers, true)
            .await?;
        self.settle(&link, lease).await
    }

    async fn settle(&self, link: &Link, lease: &Lease) -> Result<bool> {
        if !link.release(lease) {
            return Ok(false);
        }
        match link
            .consuming
            .basic_ack(lease.token.id, BasicAckOptions::default())
            .await
        {
            Ok(()) => Ok(true),
            Err(e) => {
                // The channel is gone: the broker will deliver the message again.
                tracing::warn!(error = %e, "ack not sent; the message will be redelivered");
                self.drop_link(link).await;
                Ok(false)
            }
        }
    }
}

fn unavailable(e: lapin::Error) -> Error {
    Error::unavailable(BACKEND, e)
}

#[async_trait]
impl JobQueue for AmqpJobQueue {
    async fn push_bytes(&self, payload: &[u8]) -> Result<()> {
        let link = self.link().await?;
        self.publish(
            &link,
            &self.topology.exchange,
            ROUTING_KEY,
            payload,
            FieldTable::default(),
            true,
        )
        .await
    }

    async fn lease(&self, wait: Duration) -> Result<Option<Lease>> {
        let link = self.link().await?;
        let mut consumer = link.consumer.lock().await;
        if consumer.is_none() {
            *consumer = Some(self.start_consuming(&link).await?);
        }
        let stream = consumer.as_mut().expect("just set");
        let next = match tokio::time::timeout(wait, stream.next()).await {
            Err(_) => return Ok(None),
            Ok(next) => next,
        };
        match next {
            Some(Ok(delivery)) => {
                let tag = delivery.delivery_tag;
                link.leased.lock().expect("not poisoned").insert(tag);
                Ok(Some(Lease {
                    deliveries: headers::deliveries(delivery.properties.headers().as_ref()),
                    retries: headers::count(
                        delivery.properties.headers().as_ref(),
                        headers::THUMBD_RETRIES,
                    ),
                    payload: delivery.data,
                    token: LeaseToken {
                        id: tag,
                        nonce: link.generation,
                    },
                }))
            }
            Some(Err(e)) => {
                *consumer = None;
                drop(consumer);
                self.drop_link(&link).await;
                Err(unavailable(e))
            }
            None => {
                *consumer = None;
                drop(consumer);
                self.drop_link(&link).await;
                Err(Error::unavailable(
                    BACKEND,
                    "the broker cancelled the consumer",
                ))
            }
        }
    }

    async fn heartbeat(&self, lease: &Lease) -> Result<bool> {
        // The broker keeps a delivery while the connection lives; AMQP heartbeats keep that.
        Ok(self.current().await.is_some_and(|l| l.holds(lease)))
    }

    async fn ack(&self, lease: &Lease) -> Result<bool> {
        let Some(link) = self.current().await else {
            return Ok(false);
        };
        self.settle(&link, lease).await
    }

    async fn retry(&self, lease: &Lease, delay: Duration) -> Result<bool> {
        self.give_back(lease, delay, lease.retries.saturating_add(1))
            .await
    }

    async fn put_back(&self, lease: &Lease, delay: Duration) -> Result<bool> {
        self.give_back(lease, delay, lease.retries).await
    }

    async fn dead_letter(&self, lease: &Lease, reason: &str) -> Result<bool> {
        let mut headers = FieldTable::default();
        let reason: String = reason.chars().take(1000).collect();
        headers.insert(
            headers::THUMBD_REASON.into(),
            AMQPValue::LongString(LongString::from(reason)),
        );
        let exchange = self.topology.dead_letter_exchange.clone();
        self.forward(lease, lease.deliveries, &exchange, ROUTING_KEY, headers)
            .await
    }

    async fn reply(&self, routing_key: &str, body: &[u8]) -> Result<bool> {
        let link = self.link().await?;
        // Through the default exchange to the producer's queue; not `mandatory`: a producer
        // that stopped listening must not fail the job.
        self.publish(&link, "", routing_key, body, FieldTable::default(), false)
            .await?;
        Ok(true)
    }

    async fn depth(&self) -> Result<QueueDepth> {
        let link = self.link().await?;
        // Passive declares close the channel on error: use a channel of their own.
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(unavailable)?;
        let leased = link.leased.lock().expect("not poisoned").len() as u64;
        let mut depth = QueueDepth {
            ready: self.message_count(&channel, &self.topology.queue).await?,
            leased,
            delayed: 0,
            dead: self
                .message_count(&channel, &self.topology.dead_letter_queue)
                .await?,
        };
        for (queue, _) in &self.topology.retry_queues {
            depth.delayed += self.message_count(&channel, queue).await?;
        }
        let _ = channel.close(200, "done".into()).await;
        Ok(depth)
    }
}
