//! Download slots: how many URL sources a worker fetches at once, in all and per tenant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use thumbd_jobs::Tenant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The download slots of one worker process ([`WorkerOptions::downloads`]), and how many of
/// them one tenant may hold ([`WorkerOptions::downloads_per_tenant`]): a client whose
/// sources are slow (or many) cannot take every slot from the others.
///
/// [`WorkerOptions::downloads`]: crate::WorkerOptions::downloads
/// [`WorkerOptions::downloads_per_tenant`]: crate::WorkerOptions::downloads_per_tenant
#[derive(Debug)]
pub(crate) struct Downloads {
    slots: Arc<Semaphore>,
    per_tenant: usize,
    /// Downloads in hand per tenant; a tenant with none has no entry.
    busy: Mutex<HashMap<Tenant, usize>>,
}

/// One of a tenant's turns to download; given back when dropped.
#[derive(Debug)]
pub(crate) struct TenantTurn {
    downloads: Arc<Downloads>,
    tenant: Tenant,
}

impl Downloads {
    pub(crate) fn new(total: usize, per_tenant: usize) -> Arc<Self> {
        Arc::new(Downloads {
            slots: Arc::new(Semaphore::new(total.max(1))),
            per_tenant: per_tenant.max(1),
            busy: Mutex::default(),
        })
    }

    /// A turn for `tenant`, or `None` when it already has `per_tenant` downloads in hand.
    pub(crate) fn tenant_turn(self: &Arc<Self>, tenant: &Tenant) -> Option<TenantTurn> {
        let mut busy = self.busy.lock().expect("not poisoned");
        let n = busy.entry(tenant.clone()).or_default();
        if *n >= self.per_tenant {
            return None;
        }
        *n += 1;
        Some(TenantTurn {
            downloads: Arc::clone(self),
            tenant: tenant.clone(),
        })
    }

    /// One of the slots, if one is free.
    pub(crate) fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }
}

impl Drop for TenantTurn {
    fn drop(&mut self) {
        let mut busy = self.downloads.busy.lock().expect("not poisoned");
        if let Some(n) = busy.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_gets_at_most_its_share_and_gets_it_back() {
        let d = Downloads::new(4, 2);
        let (a, b) = (Tenant::parse("a").unwrap(), Tenant::parse("b").unwrap());
        let first = d.tenant_turn(&a).unwrap();
        let _second = d.tenant_turn(&a).unwrap();
        assert!(d.tenant_turn(&a).is_none(), "a third turn for a");
        assert!(d.tenant_turn(&b).is_some(), "b is not held back by a");
        drop(first);
        assert!(d.tenant_turn(&a).is_some(), "a turn given back");
        drop(d.tenant_turn(&b));
        assert!(
            !d.busy.lock().unwrap().contains_key(&b),
            "no entry for idle tenants"
        );
    }
}
