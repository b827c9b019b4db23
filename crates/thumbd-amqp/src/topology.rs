//! The exchanges and queues thumbd uses, declared idempotently.

use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};

use crate::AmqpOptions;

/// The routing key of job messages (README, Distributed mode), on the main exchange and the dead-letter one.
pub const ROUTING_KEY: &str = "jobs.v1";

/// Names of everything thumbd declares on the broker, derived from a namespace
/// (`thumbd` in production).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Producers publish job messages here with [`ROUTING_KEY`] (direct, durable).
    pub exchange: String,
    /// The quorum queue workers consume, bound to `exchange` with [`ROUTING_KEY`].
    pub queue: String,
    /// Where dead letters go (direct, durable).
    pub dead_letter_exchange: String,
    /// The quorum queue holding dead letters, for operators to inspect.
    pub dead_letter_queue: String,
    /// One quorum queue per retry delay, `(name, delay)`: messages wait out their TTL there,
    /// then are dead-lettered back to `exchange`.
    pub retry_queues: Vec<(String, Duration)>,
    delivery_limit: u32,
}

impl Topology {
    /// The names for `options.namespace`.
    pub fn new(options: &AmqpOptions) -> Self {
        let ns = &options.namespace;
        let mut delays = options.retry_delays.clone();
        delays.sort();
        delays.dedup();
        if delays.is_empty() {
            delays.push(Duration::from_secs(1));
        }
        Topology {
            exchange: ns.clone(),
            queue: format!("{ns}.jobs"),
            dead_letter_exchange: format!("{ns}.dlx"),
            dead_letter_queue: format!("{ns}.dead"),
            retry_queues: delays
                .into_iter()
                .map(|d| (format!("{ns}.retry.{}ms", d.as_millis()), d))
                .collect(),
            delivery_limit: options.delivery_limit,
        }
    }

    /// The retry queue for a delay: the longest delay not above `delay`, else the shortest.
    pub fn retry_queue(&self, delay: Duration) -> &str {
        self.retry_queues
            .iter()
            .rev()
            .find(|(_, d)| *d <= delay)
            .unwrap_or(&self.retry_queues[0])
            .0
            .as_str()
    }

    /// Declares everything (idempotent: same arguments each time; a queue declared earlier
    /// with other arguments makes the broker close the channel with PRECONDITION_FAILED).
    pub async fn declare(&self, channel: &Channel) -> lapin::Result<()> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        for exchange in [&self.exchange, &self.dead_letter_exchange] {
            channel
                .exchange_declare(
                    short(exchange),
                    ExchangeKind::Direct,
                    durable,
                    FieldTable::default(),
                )
                .await?;
        }
        let mut args = quorum_args(&self.dead_letter_exchange, ROUTING_KEY);
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(self.delivery_limit.into()),
        );
        declare_queue(channel, &self.queue, args).await?;
        bind(channel, &self.queue, &self.exchange).await?;

        let mut dead = FieldTable::default();
        dead.insert("x-queue-type".into(), text("quorum"));
        declare_queue(channel, &self.dead_letter_queue, dead).await?;
        bind(channel, &self.dead_letter_queue, &self.dead_letter_exchange).await?;

        for (name, delay) in &self.retry_queues {
            let mut args = quorum_args(&self.exchange, ROUTING_KEY);
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
            );
            declare_queue(channel, name, args).await?;
        }
        Ok(())
    }

    /// Deletes every queue and exchange (for tests and tools; production data goes with it).
    pub async fn delete(&self, channel: &Channel) -> lapin::Result<()> {
        let queues = [&self.queue, &self.dead_letter_queue]
            .into_iter()
            .chain(self.retry_queues.iter().map(|(n, _)| n));
        for queue in queues {
            channel
                .queue_delete(short(queue), QueueDeleteOptions::default())
                .await?;
        }
        for exchange in [&self.exchange, &self.dead_letter_exchange] {
            channel
                .exchange_delete(short(exchange), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}

/// Quorum queue arguments dead-lettering at least once to `exchange` with `routing_key`.
fn quorum_args(exchange: &str, routing_key: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert("x-dead-letter-exchange".into(), text(exchange));
    args.insert("x-dead-letter-routing-key".into(), text(routing_key));
    // At-least-once dead-lettering needs the overflow behaviour `reject-publish`.
    args.insert("x-dead-letter-strategy".into(), text("at-least-once"));
    args.insert("x-overflow".into(), text("reject-publish"));
    args
}

async fn declare_queue(channel: &Channel, name: &str, args: FieldTable) -> lapin::Result<()> {
    channel
        .queue_declare(
            short(name),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .map(|_| ())
}

async fn bind(channel: &Channel, queue: &str, exchange: &str) -> lapin::Result<()> {
    channel
        .queue_bind(
            short(queue),
            short(exchange),
            short(ROUTING_KEY),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

fn short(s: &str) -> ShortString {
    s.into()
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_retry_tiers() {
        let t = Topology::new(&AmqpOptions::default());
        assert_eq!(t.exchange, "thumbd");
        assert_eq!(t.queue, "thumbd.jobs");
        assert_eq!(
            t.retry_queue(Duration::from_millis(300)),
            "thumbd.retry.1000ms"
        );
        assert_eq!(t.retry_queue(Duration::from_secs(5)), "thumbd.retry.4000ms");
        assert_eq!(
            t.retry_queue(Duration::from_secs(3600)),
            "thumbd.retry.300000ms"
        );
    }
}
