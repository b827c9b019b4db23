//! thumbd-amqp: the [`JobQueue`](thumbd_jobs::JobQueue) on RabbitMQ, through lapin. The only
//! crate that knows AMQP.
//!
//! - [`Topology`]: the exchange `thumbd` (direct, durable) and the routing key `jobs.v1` of
//!   the README's queue producer format, a quorum queue with an explicit delivery limit, a dead-letter exchange and
//!   queue (at-least-once dead-lettering), and one delay queue per retry delay. Declared
//!   idempotently whenever a connection is made.
//! - [`AmqpJobQueue`]: persistent, `mandatory` publishes whose publisher confirms are awaited
//!   with a timeout (a broker that is down or blocks publishers gives
//!   [`Error::Unavailable`](thumbd_jobs::Error::Unavailable), never a hang); a consumer with
//!   per-consumer QoS = prefetch and manual acks; retries through the delay queues and
//!   dead-letters with a reason header, both published (confirmed) before the delivery is
//!   acked; its own reconnection: a lease from a connection that died answers `false` to
//!   `ack`, and the broker delivers the message again.
//!
//! Delivery counting: quorum queues count returned deliveries in `x-delivery-count`; a
//! retried message is a new message, so it carries the deliveries so far, the retried one
//! not counted, in `x-thumbd-deliveries`, and its retries in `x-thumbd-retries`.
//! [`Lease::deliveries`](thumbd_jobs::Lease) is the first two's sum plus one.

mod headers;
mod link;
mod options;
mod queue;
mod topology;

pub use options::AmqpOptions;
pub use queue::AmqpJobQueue;
pub use topology::{ROUTING_KEY, Topology};
