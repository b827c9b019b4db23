//! `Link`: one RabbitMQ connection, its two channels and the deliveries leased on it.

use std::collections::HashSet;

use lapin::{Channel, Connection, Consumer};
use thumbd_jobs::Lease;
use tokio::sync::Mutex;

/// One connection and its channels.
pub(crate) struct Link {
    pub(crate) generation: u64,
    pub(crate) connection: Connection,
    /// In confirm mode; shared by every publish.
    pub(crate) publisher: Channel,
    /// Carries the consumer and the acks (acks must go on the delivering channel).
    pub(crate) consuming: Channel,
    /// Started by the first `lease` (API processes never consume).
    pub(crate) consumer: Mutex<Option<Consumer>>,
    /// Delivery tags handed out and not yet settled.
    pub(crate) leased: std::sync::Mutex<HashSet<u64>>,
}

impl Link {
    /// Its connection and both channels are open.
    pub(crate) fn alive(&self) -> bool {
        self.connection.status().connected()
            && self.publisher.status().connected()
            && self.consuming.status().connected()
    }

    /// `lease` came on this connection and is not settled yet.
    pub(crate) fn holds(&self, lease: &Lease) -> bool {
        lease.token.nonce == self.generation
            && self
                .leased
                .lock()
                .expect("not poisoned")
                .contains(&lease.token.id)
    }

    /// Marks `lease` settled; false if it was not this connection's or was settled.
    pub(crate) fn release(&self, lease: &Lease) -> bool {
        lease.token.nonce == self.generation
            && self
                .leased
                .lock()
                .expect("not poisoned")
                .remove(&lease.token.id)
    }
}
