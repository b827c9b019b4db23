//! `AmqpOptions`: how the RabbitMQ queue connects, consumes and publishes.

use std::time::Duration;

/// Settings of an [`AmqpJobQueue`](crate::AmqpJobQueue). `Default` is what `thumbd` uses.
#[derive(Debug, Clone)]
pub struct AmqpOptions {
    /// Prefix of every exchange and queue name: `thumbd` in production (exchange `thumbd`,
    /// queue `thumbd.jobs`…); tests use a unique one.
    pub namespace: String,
    /// Unacked deliveries this consumer may hold (per-consumer QoS). Set it to the worker's
    /// prefetch.
    pub prefetch: u16,
    /// Longest wait for a publisher confirm (and for connecting) before the operation fails
    /// with `Unavailable`. Default 5 s.
    pub publish_timeout: Duration,
    /// AMQP heartbeat asked for when the URL does not set one. Default 10 s.
    pub heartbeat: Duration,
    /// Deliveries after which the broker itself dead-letters a message (the quorum queue's
    /// `x-delivery-limit`): the backstop for a message that kills its worker every time.
    /// The worker dead-letters sooner, after its own `max_deliveries`. Default 10.
    pub delivery_limit: u32,
    /// Retry delays available, one delay queue each; a retry waits for the longest one not
    /// above the delay asked for (the shortest if all are above).
    pub retry_delays: Vec<Duration>,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        AmqpOptions {
            namespace: "thumbd".into(),
            prefetch: 4,
            publish_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_secs(10),
            delivery_limit: 10,
            retry_delays: [1, 2, 4, 8, 16, 32, 60, 300]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        }
    }
}
