//! [`Dispatcher`]: moves deliveries from the outbox (`webhook_deliveries` rows written with
//! the change they announce) onto the webhook lane of the job queue.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::DeliveryMessage;
use crate::error::Result;
use crate::queue::JobQueue;
use crate::store::MetaStore;
use crate::timestamp::Timestamp;

/// How often a dispatcher looks for due deliveries unless nudged: what bounds the delay
/// between a job's finish and its deliveries' push. It is not woken per finished job: that
/// would cost a query per job whether or not anyone subscribes, where a look every 250 ms
/// costs four a second, at any load.
const LOOK_EVERY: Duration = Duration::from_millis(250);
/// A claimed delivery whose push was not recorded within this is claimed again.
const CLAIM_FOR: Duration = Duration::from_secs(30);
/// Most deliveries one pass pushes.
const BATCH: u32 = 200;

/// Pushes a queue message for each delivery due for dispatch, then records it pushed. Every
/// process runs one; they share the work through [`WebhookStore::claim_dispatch`]
/// (crate::WebhookStore::claim_dispatch). A crash between the push and the record costs a
/// second message for the same delivery, which the delivery worker skips once delivered.
pub struct Dispatcher {
    store: Arc<dyn MetaStore>,
    queue: Arc<dyn JobQueue>,
    nudged: Notify,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher from `store` onto `queue` (the webhook lane).
    pub fn new(store: Arc<dyn MetaStore>, queue: Arc<dyn JobQueue>) -> Self {
        Dispatcher {
            store,
            queue,
            nudged: Notify::new(),
        }
    }

    /// Something may have written deliveries (a thumbnail deleted): look now.
    pub fn nudge(&self) {
        self.nudged.notify_one();
    }

    /// One pass: pushes every delivery due now; returns how many it pushed.
    pub async fn dispatch_due(&self) -> Result<usize> {
        let mut pushed = 0;
        loop {
            let now = Timestamp::now();
            let ids = self
                .store
                .claim_dispatch(now, now.plus(CLAIM_FOR), BATCH)
                .await?;
            let mut done = Vec::with_capacity(ids.len());
            let mut failed = None;
            for &id in &ids {
                match self
                    .queue
                    .push_bytes(&DeliveryMessage { delivery: id }.to_json())
                    .await
                {
                    Ok(()) => done.push(id),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if !done.is_empty() {
                self.store.mark_dispatched(&done).await?;
            }
            pushed += done.len();
            if let Some(e) = failed {
                // The rest stay claimed, and are claimed again in CLAIM_FOR.
                return Err(e);
            }
            if ids.len() < BATCH as usize {
                return Ok(pushed);
            }
        }
    }

    /// Dispatches until `stop` resolves: every 250 ms, and at once when
    /// [nudged](Self::nudge).
    pub async fn run(&self, stop: impl Future<Output = ()>) {
        let mut tick = tokio::time::interval(LOOK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {}
                () = self.nudged.notified() => {}
            }
            match self.dispatch_due().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(pushed = n, "webhook deliveries queued"),
                Err(e) => tracing::warn!(error = %e, "cannot queue webhook deliveries now"),
            }
        }
    }
}
