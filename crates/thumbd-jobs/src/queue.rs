//! The `JobQueue` role: at-least-once delivery of [`JobMessage`]s to workers.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::job::JobMessage;

/// One delivery of a message to a worker. Until it is acked, retried or dead-lettered the
/// message is invisible to other workers; if the worker dies, the queue delivers it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The raw body. Parse with [`JobMessage::parse`]: producers outside thumbd may send
    /// anything, and a malformed body must be dead-lettered, not retried.
    pub payload: Vec<u8>,
    /// How many times this message has been delivered, this delivery included (1 = first),
    /// not counting deliveries the worker settled with [`JobQueue::retry`]: a count that
    /// grows only when workers die on (or lose) the message, which is what a limit on it is
    /// for.
    pub deliveries: u32,
    /// How many times a worker gave this message back with [`JobQueue::retry`] (a transient
    /// failure of a backend or a source): 0 on the first delivery. It paces the backoff.
    pub retries: u32,
    /// The backend's handle for this delivery.
    pub token: LeaseToken,
}

/// Identifies one delivery to its backend (a row and nonce, a delivery tag and channel…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken {
    /// Backend-defined id of the message or delivery.
    pub id: u64,
    /// Backend-defined generation, so a stale lease cannot ack a newer delivery.
    pub nonce: u64,
}

/// How many messages a queue holds, by state (for `/metrics` and the logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Ready for a worker now.
    pub ready: u64,
    /// Delivered and not yet settled.
    pub leased: u64,
    /// Waiting for a retry delay to pass.
    pub delayed: u64,
    /// Dead-lettered.
    pub dead: u64,
}

/// A durable work queue with leases (ARCHITECTURE.md: life of a job, invariants).
///
/// Contract (checked by `conformance::job_queue`, feature `testing`): a pushed
/// message is delivered at least once, until acked or dead-lettered; an unsettled lease is
/// delivered again once it times out (or when the consumer's connection drops); settling a
/// lease that is no longer current returns `false` and changes nothing.
#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Stores a job message durably; when this returns `Ok`, the message survives a crash.
    async fn push(&self, message: &JobMessage) -> Result<()> {
        self.push_bytes(&message.to_json()).await
    }

    /// Stores any message durably (a queue lane carries one kind of message; see
    /// [`WEBHOOK_LANE`](crate::WEBHOOK_LANE)); when this returns `Ok`, it survives a crash.
    async fn push_bytes(&self, payload: &[u8]) -> Result<()>;

    /// The next message, waiting up to `wait` for one; `None` if none came.
    async fn lease(&self, wait: Duration) -> Result<Option<Lease>>;

    /// Keeps a long job's lease alive; `false` if the lease was lost.
    async fn heartbeat(&self, lease: &Lease) -> Result<bool>;

    /// Done: removes the message; `false` if the lease was lost (another delivery will come).
    async fn ack(&self, lease: &Lease) -> Result<bool>;

    /// Gives the message back, to be delivered again after `delay`. The next delivery has
    /// the same [`Lease::deliveries`] as this one and one more [`Lease::retries`].
    async fn retry(&self, lease: &Lease, delay: Duration) -> Result<bool>;

    /// Gives the message back unprocessed, to be delivered again after `delay` (a worker
    /// with no room for it now): the next delivery has the same [`Lease::deliveries`] and
    /// [`Lease::retries`] as this one.
    async fn put_back(&self, lease: &Lease, delay: Duration) -> Result<bool>;

    /// Moves the message to the dead-letter store with `reason`; it is not delivered again.
    async fn dead_letter(&self, lease: &Lease, reason: &str) -> Result<bool>;

    /// Messages by state.
    async fn depth(&self) -> Result<QueueDepth>;

    /// Publishes a finished job's status body to the `replyTo` routing key its producer gave
    /// (README, Distributed mode). `false` if this queue has nowhere to publish replies (the embedded queue:
    /// its producers are in-process and read the store).
    async fn reply(&self, routing_key: &str, body: &[u8]) -> Result<bool> {
        let _ = (routing_key, body);
        Ok(false)
    }
}
