//! The `BlobStore` role: originals and thumbnails by [`BlobKey`].

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;
use crate::ids::BlobKey;

/// Durable bytes by key (SPEC §1).
///
/// Contract ([`conformance::blob_store`](crate::conformance::blob_store)): a `put` is atomic
/// (readers see the old bytes or the new, never a part) and durable once it returns; `put`
/// of an existing key replaces it; `delete` of a missing key is not an error.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `key`.
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<()>;

    /// The bytes, or `None` if there are none.
    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>>;

    /// Removes the bytes; `false` if there were none.
    async fn delete(&self, key: &BlobKey) -> Result<bool>;

    /// A cheap round trip, for `/readyz`.
    async fn ping(&self) -> Result<()>;
}
