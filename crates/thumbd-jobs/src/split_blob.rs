//! `SplitBlobStore`: originals in one store, everything else in another.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::blob::BlobStore;
use crate::error::Result;
use crate::ids::BlobKey;

/// Routes `originals/…` keys to one [`BlobStore`] and every other key to a second: the
/// embedded mode keeps short-lived originals in SQLite and thumbnails as files.
#[derive(Clone)]
pub struct SplitBlobStore {
    originals: Arc<dyn BlobStore>,
    rest: Arc<dyn BlobStore>,
}

impl std::fmt::Debug for SplitBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitBlobStore").finish_non_exhaustive()
    }
}

impl SplitBlobStore {
    /// `originals/…` to `originals`, the rest to `rest`.
    pub fn new(originals: Arc<dyn BlobStore>, rest: Arc<dyn BlobStore>) -> Self {
        SplitBlobStore { originals, rest }
    }

    fn route(&self, key: &BlobKey) -> &dyn BlobStore {
        if key.as_str().starts_with("originals/") {
            self.originals.as_ref()
        } else {
            self.rest.as_ref()
        }
    }
}

#[async_trait]
impl BlobStore for SplitBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        self.route(key).put(key, bytes).await
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>> {
        self.route(key).get(key).await
    }

    async fn delete(&self, key: &BlobKey) -> Result<bool> {
        self.route(key).delete(key).await
    }

    async fn ping(&self) -> Result<()> {
        self.originals.ping().await?;
        self.rest.ping().await
    }
}
