//! The `BlobStore` role: originals and thumbnails by [`BlobKey`].

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;
use crate::ids::BlobKey;

/// Durable bytes by key.
///
/// Contract (`conformance::blob_store`, feature `testing`): a `put` is atomic
/// (readers see the old bytes or the new, never a part) and durable once it returns (a
/// `put_unsynced` once `sync` has returned); `put` of an existing key replaces it; `delete`
/// of a missing key is not an error.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `key`.
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<()>;

    /// Stores `bytes` under `key` like [`put`](Self::put), but durable against a machine
    /// crash only once [`sync`](Self::sync) has returned: for an original whose job usually
    /// finishes (and deletes it) before anyone needs it to survive a crash. The default is
    /// `put`, for stores whose writes cost nothing more to make durable.
    async fn put_unsynced(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        self.put(key, bytes).await
    }

    /// Makes what [`put_unsynced`](Self::put_unsynced) stored under `key` durable; nothing to
    /// do if it is gone meanwhile.
    async fn sync(&self, key: &BlobKey) -> Result<()> {
        let _ = key;
        Ok(())
    }

    /// The bytes, or `None` if there are none.
    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>>;

    /// Removes the bytes; `false` if there were none.
    async fn delete(&self, key: &BlobKey) -> Result<bool>;

    /// A cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<()>;
}
