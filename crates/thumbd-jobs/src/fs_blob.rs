//! `FsBlobStore`: blobs as files under one directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::Durability;
use crate::blob::BlobStore;
use crate::error::Result;
use crate::ids::BlobKey;

/// Stores each blob as `ROOT/<key>`. [`BlobKey`]'s alphabet makes every key a safe relative
/// path; a client's thumbnailId never gets here.
///
/// Writes are atomic: a temporary file in the same directory is written and renamed over the
/// target; with [`Durability::Full`] (the default) the file is fsynced before the rename and
/// the directory after. Several processes on one machine may share a root. A deleted blob's
/// file is unlinked: a file is never reused for another blob, so no crash can leave one
/// blob's bytes under another's name.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    fsync: bool,
}

impl FsBlobStore {
    /// A store rooted at `root` (created if missing).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        // Emptied originals an earlier version kept for reuse: a crash could leave one
        // linked under a live original's name too, so none is ever written into again.
        match std::fs::remove_dir_all(root.join(LEGACY_RECYCLED)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        Ok(FsBlobStore { root, fsync: true })
    }

    /// Sets how durable a returned `put` is ([`Durability::Full`] fsyncs the file and its
    /// directory; [`Durability::Process`] only renames, which a killed process cannot undo).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.fsync = durability == Durability::Full;
        self
    }

    /// The directory blobs live under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

/// Where versions before 2026-12 kept emptied originals for reuse. Upper case is outside
/// [`BlobKey`]'s alphabet: no key can name it.
const LEGACY_RECYCLED: &str = "RECYCLED";

fn write_atomic(path: &Path, bytes: &[u8], fsync: bool) -> std::io::Result<()> {
    let dir = path.parent().expect("blob paths have a parent");
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    let tmp = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if fsync {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if fsync {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| std::io::Error::other(format!("blob task failed: {e}")))?
        .map_err(Into::into)
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        let (path, fsync) = (self.path(key), self.fsync);
        blocking(move || write_atomic(&path, &bytes, fsync)).await
    }

    /// Written and renamed into place, without the fsyncs: an original deleted before the
    /// kernel writes it back never reaches the disk at all.
    async fn put_unsynced(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        let path = self.path(key);
        blocking(move || write_atomic(&path, &bytes, false)).await
    }

    async fn sync(&self, key: &BlobKey) -> Result<()> {
        if !self.fsync {
            return Ok(());
        }
        let path = self.path(key);
        blocking(move || {
            match std::fs::File::open(&path) {
                Ok(f) => f.sync_all()?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            }
            // Its name too: the rename into place.
            let dir = path.parent().expect("blob paths have a parent");
            std::fs::File::open(dir)?.sync_all()
        })
        .await
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>> {
        match tokio::fs::read(self.path(key)).await {
            Ok(v) => Ok(Some(Bytes::from(v))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<bool> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn ping(&self) -> Result<()> {
        tokio::fs::metadata(&self.root).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;
    use crate::JobId;

    #[tokio::test]
    async fn a_deleted_original_is_unlinked_and_its_file_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let (a, b) = (
            BlobKey::original(JobId::new()),
            BlobKey::original(JobId::new()),
        );
        store.put(&a, Bytes::from_static(b"first")).await.unwrap();
        // Another name for the file, as a reader holding it open would have.
        let held = dir.path().join("held");
        std::fs::hard_link(store.path(&a), &held).unwrap();
        assert!(store.delete(&a).await.unwrap());
        assert_eq!(store.get(&a).await.unwrap(), None);
        assert!(!store.delete(&a).await.unwrap());
        assert_eq!(std::fs::metadata(&held).unwrap().nlink(), 1);

        store.put(&b, Bytes::from_static(b"second")).await.unwrap();
        assert_eq!(std::fs::read(&held).unwrap(), b"first");
        assert_eq!(store.get(&b).await.unwrap().unwrap(), "second");
    }

    #[tokio::test]
    async fn a_file_linked_under_two_names_by_an_earlier_version_never_feeds_a_write() {
        // Versions that kept emptied originals for reuse could be killed between linking
        // the file into RECYCLED and unlinking the original: the next original written
        // into that file changed a live original's bytes (another job's, maybe another
        // tenant's).
        let dir = tempfile::tempdir().unwrap();
        let live = BlobKey::original(JobId::new());
        {
            let store = FsBlobStore::open(dir.path()).unwrap();
            store.put(&live, Bytes::from_static(b"live")).await.unwrap();
        }
        let recycled = dir.path().join(LEGACY_RECYCLED);
        std::fs::create_dir_all(&recycled).unwrap();
        std::fs::hard_link(dir.path().join(live.as_str()), recycled.join("7")).unwrap();

        let store = FsBlobStore::open(dir.path()).unwrap();
        assert!(!recycled.exists());
        let next = BlobKey::original(JobId::new());
        store
            .put(&next, Bytes::from_static(b"another job's bytes"))
            .await
            .unwrap();
        assert_eq!(store.get(&live).await.unwrap().unwrap(), "live");
        assert_eq!(
            store.get(&next).await.unwrap().unwrap(),
            "another job's bytes"
        );
    }

    #[tokio::test]
    async fn other_blobs_are_unlinked() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let key = BlobKey::thumbnail("ab", JobId::new());
        store
            .put(&key, Bytes::from_static(b"thumbnail"))
            .await
            .unwrap();
        assert!(store.delete(&key).await.unwrap());
        assert_eq!(store.get(&key).await.unwrap(), None);
    }
}
