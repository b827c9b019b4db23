//! `HandoffBlobStore`: originals handed from the API to a worker in the same process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use crate::blob::BlobStore;
use crate::error::Result;
use crate::ids::BlobKey;

/// A [`BlobStore`] that keeps the originals it stores in memory as well, up to `capacity`
/// bytes, so a worker in the same process (`thumbd serve`) reads a job's original without
/// touching the disk: no read, no copy, no fresh buffer to fault in.
///
/// Every write still goes to the inner store first (the claim check stays durable); only
/// reads are served from memory. An original leaves memory when it is deleted (its job
/// finished) or, oldest first, when newer ones need the room. Thumbnails and uploads pass
/// straight through.
#[derive(Clone)]
pub struct HandoffBlobStore {
    inner: Arc<dyn BlobStore>,
    held: Arc<Mutex<Held>>,
    capacity: usize,
}

/// The originals in memory, in the order they were stored.
#[derive(Default)]
struct Held {
    bytes: HashMap<BlobKey, Bytes>,
    order: VecDeque<BlobKey>,
    total: usize,
}

impl Held {
    fn remove(&mut self, key: &BlobKey) {
        if let Some(b) = self.bytes.remove(key) {
            self.total -= b.len();
            // Usually the oldest: the queue is served in order.
            if let Some(i) = self.order.iter().position(|k| k == key) {
                self.order.remove(i);
            }
        }
    }

    fn insert(&mut self, key: &BlobKey, bytes: Bytes, capacity: usize) {
        self.remove(key);
        while self.total + bytes.len() > capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(b) = self.bytes.remove(&oldest) {
                self.total -= b.len();
            }
        }
        self.total += bytes.len();
        self.bytes.insert(key.clone(), bytes);
        self.order.push_back(key.clone());
    }
}

impl std::fmt::Debug for HandoffBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.held.lock().expect("not poisoned");
        f.debug_struct("HandoffBlobStore")
            .field("capacity", &self.capacity)
            .field("held", &held.bytes.len())
            .field("held_bytes", &held.total)
            .finish_non_exhaustive()
    }
}

impl HandoffBlobStore {
    /// Wraps `inner`, holding at most `capacity` bytes of originals in memory.
    pub fn new(inner: Arc<dyn BlobStore>, capacity: usize) -> Self {
        HandoffBlobStore {
            inner,
            held: Arc::default(),
            capacity,
        }
    }

    /// Holds what was just stored under `key` in memory, if it is an original that fits.
    fn hold(&self, key: &BlobKey, bytes: Bytes) {
        let keep = key.is_original() && bytes.len() <= self.capacity;
        let mut held = self.held.lock().expect("not poisoned");
        if keep {
            held.insert(key, bytes, self.capacity);
        } else {
            // A replaced original that no longer fits must not be served stale.
            held.remove(key);
        }
    }

    /// Bytes of originals held in memory now.
    pub fn held_bytes(&self) -> usize {
        self.held.lock().expect("not poisoned").total
    }
}

#[async_trait]
impl BlobStore for HandoffBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        // Bytes is reference-counted: holding it costs no copy.
        self.inner.put(key, bytes.clone()).await?;
        self.hold(key, bytes);
        Ok(())
    }

    async fn put_unsynced(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        self.inner.put_unsynced(key, bytes.clone()).await?;
        self.hold(key, bytes);
        Ok(())
    }

    async fn sync(&self, key: &BlobKey) -> Result<()> {
        self.inner.sync(key).await
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>> {
        let held = self
            .held
            .lock()
            .expect("not poisoned")
            .bytes
            .get(key)
            .cloned();
        match held {
            Some(bytes) => Ok(Some(bytes)),
            None => self.inner.get(key).await,
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<bool> {
        self.held.lock().expect("not poisoned").remove(key);
        self.inner.delete(key).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FsBlobStore, JobId};

    fn store(capacity: usize) -> (tempfile::TempDir, Arc<FsBlobStore>, HandoffBlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let fs = Arc::new(FsBlobStore::open(dir.path()).unwrap());
        let handoff = HandoffBlobStore::new(fs.clone(), capacity);
        (dir, fs, handoff)
    }

    #[tokio::test]
    async fn originals_are_written_through_and_read_from_memory() {
        let (_dir, fs, handoff) = store(1000);
        let key = BlobKey::original(JobId::new());
        handoff
            .put(&key, Bytes::from_static(b"original"))
            .await
            .unwrap();
        assert_eq!(
            fs.get(&key).await.unwrap().unwrap(),
            &b"original"[..],
            "durable"
        );
        assert_eq!(handoff.held_bytes(), 8);
        // Served from memory: gone from disk behind its back, still there.
        fs.delete(&key).await.unwrap();
        assert_eq!(handoff.get(&key).await.unwrap().unwrap(), &b"original"[..]);
        assert!(!handoff.delete(&key).await.unwrap());
        assert_eq!(handoff.get(&key).await.unwrap(), None);
        assert_eq!(handoff.held_bytes(), 0);
    }

    #[tokio::test]
    async fn only_originals_are_held_and_the_oldest_leave_first() {
        let (_dir, _fs, handoff) = store(10);
        let thumb = BlobKey::thumbnail("ab", JobId::new());
        handoff.put(&thumb, Bytes::from_static(b"t")).await.unwrap();
        assert_eq!(handoff.held_bytes(), 0, "thumbnails pass through");
        let keys: Vec<BlobKey> = (0..3).map(|_| BlobKey::original(JobId::new())).collect();
        for k in &keys {
            handoff.put(k, Bytes::from_static(b"1234")).await.unwrap();
        }
        assert_eq!(
            handoff.held_bytes(),
            8,
            "the first of three 4-byte originals left"
        );
        assert!(format!("{handoff:?}").contains("held: 2"));
        // All three are still readable (from disk or memory).
        for k in &keys {
            assert_eq!(handoff.get(k).await.unwrap().unwrap(), &b"1234"[..]);
        }
        let big = BlobKey::original(JobId::new());
        handoff.put(&big, Bytes::from(vec![7; 11])).await.unwrap();
        assert_eq!(
            handoff.held_bytes(),
            8,
            "larger than the capacity: not held"
        );
        assert_eq!(handoff.get(&big).await.unwrap().unwrap().len(), 11);
    }

    #[tokio::test]
    async fn a_replaced_original_is_never_served_stale() {
        let (_dir, _fs, handoff) = store(5);
        let key = BlobKey::original(JobId::new());
        handoff.put(&key, Bytes::from_static(b"old")).await.unwrap();
        handoff
            .put(&key, Bytes::from_static(b"newer!"))
            .await
            .unwrap();
        assert_eq!(handoff.get(&key).await.unwrap().unwrap(), &b"newer!"[..]);
        assert_eq!(handoff.held_bytes(), 0);
    }

    #[tokio::test]
    async fn passes_the_blob_conformance_suite() {
        let (_dir, _fs, handoff) = store(1 << 20);
        crate::conformance::blob_store(&handoff).await;
    }
}
