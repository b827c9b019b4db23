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
/// the directory after. Several processes on one machine may share a root.
///
/// Originals ([`BlobKey::is_original`]) are written once per job and deleted when it has
/// finished, so their files come and go at the job rate. A deleted original's file is
/// emptied and kept (up to 64 of them, under `ROOT/RECYCLED`) for the next original to be
/// written into, instead of being unlinked: ext4 without a journal scans past every inode
/// freed in the last half minute each time it allocates one, which at a few dozen jobs a
/// second cost more CPU than writing the file (benches/README.md). Reading an original
/// that is being deleted may then see another original's bytes; only a job already
/// finished (whose record no longer changes) can be reading it.
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

    /// Where emptied originals wait for reuse, if `key` is an original.
    fn recycled(&self, key: &BlobKey) -> Option<PathBuf> {
        key.is_original().then(|| self.root.join(RECYCLED))
    }
}

/// The directory of emptied originals under the root. Upper case is outside [`BlobKey`]'s
/// alphabet: no key can name it or anything in it.
const RECYCLED: &str = "RECYCLED";

/// How many emptied originals may wait for reuse; beyond that, deleted ones are unlinked.
const RECYCLED_SLOTS: u32 = 64;

/// Moves a file from `recycled` to `tmp` (a new name in the target's directory): true if
/// there was one. Several processes may race for the same file; losers try the next.
fn take_recycled(recycled: &Path, tmp: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(recycled) else {
        return false;
    };
    entries
        .flatten()
        .any(|e| std::fs::rename(e.path(), tmp).is_ok())
}

/// Deletes the original at `path`, keeping its file, emptied, in a free slot of `recycled`
/// (or unlinking it when every slot is taken). False if there was nothing at `path`.
fn recycle(path: &Path, recycled: &Path) -> std::io::Result<bool> {
    match std::fs::OpenOptions::new().write(true).open(path) {
        // Emptied first: a slot only ever holds an empty file, whatever happens next.
        Ok(f) => f.set_len(0)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    // Kept if a slot is free (link(2) refuses a taken one; the inode then outlives the
    // unlink below); otherwise, or on a filesystem without hard links, simply unlinked.
    let first = rand::random::<u32>() % RECYCLED_SLOTS;
    if std::fs::create_dir_all(recycled).is_ok() {
        for slot in (0..RECYCLED_SLOTS).map(|i| (first + i) % RECYCLED_SLOTS) {
            match std::fs::hard_link(path, recycled.join(slot.to_string())) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                _ => break,
            }
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn write_atomic(
    path: &Path,
    bytes: &[u8],
    fsync: bool,
    recycled: Option<&Path>,
) -> std::io::Result<()> {
    let dir = path.parent().expect("blob paths have a parent");
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    let tmp = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
    let result = (|| {
        let mut f = if recycled.is_some_and(|r| take_recycled(r, &tmp)) {
            // Empty already, unless a deleting process died half-way.
            std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&tmp)?
        } else {
            std::fs::File::create(&tmp)?
        };
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
        let (path, fsync, recycled) = (self.path(key), self.fsync, self.recycled(key));
        blocking(move || write_atomic(&path, &bytes, fsync, recycled.as_deref())).await
    }

    /// Written and renamed into place, without the fsyncs: an original deleted (or reused)
    /// before the kernel writes it back never reaches the disk at all.
    async fn put_unsynced(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        let (path, recycled) = (self.path(key), self.recycled(key));
        blocking(move || write_atomic(&path, &bytes, false, recycled.as_deref())).await
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
        let path = self.path(key);
        if let Some(recycled) = self.recycled(key) {
            return blocking(move || recycle(&path, &recycled)).await;
        }
        match tokio::fs::remove_file(path).await {
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

    fn kept(store: &FsBlobStore) -> Vec<std::fs::DirEntry> {
        match std::fs::read_dir(store.root().join(RECYCLED)) {
            Ok(entries) => entries.flatten().collect(),
            Err(_) => Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_deleted_original_file_is_emptied_and_reused_for_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let (a, b) = (
            BlobKey::original(JobId::new()),
            BlobKey::original(JobId::new()),
        );
        store
            .put(&a, Bytes::from_static(b"the first original"))
            .await
            .unwrap();
        let inode = std::fs::metadata(store.path(&a)).unwrap().ino();

        assert!(store.delete(&a).await.unwrap());
        assert_eq!(store.get(&a).await.unwrap(), None);
        assert!(!store.delete(&a).await.unwrap());
        let waiting = kept(&store);
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].metadata().unwrap().len(), 0);

        store.put(&b, Bytes::from_static(b"second")).await.unwrap();
        assert_eq!(std::fs::metadata(store.path(&b)).unwrap().ino(), inode);
        assert_eq!(store.get(&b).await.unwrap().unwrap(), "second");
        assert!(kept(&store).is_empty());
    }

    #[tokio::test]
    async fn at_most_64_deleted_originals_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        let keys: Vec<BlobKey> = (0..70).map(|_| BlobKey::original(JobId::new())).collect();
        for key in &keys {
            store
                .put(key, Bytes::from_static(b"original"))
                .await
                .unwrap();
        }
        for key in &keys {
            assert!(store.delete(key).await.unwrap());
            assert_eq!(store.get(key).await.unwrap(), None);
        }
        assert_eq!(kept(&store).len(), RECYCLED_SLOTS as usize);
        assert_eq!(
            std::fs::read_dir(dir.path().join("originals"))
                .unwrap()
                .count(),
            0
        );
    }

    #[tokio::test]
    async fn a_file_left_unemptied_is_truncated_when_reused() {
        // A process that died between taking a slot and emptying the file.
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join(RECYCLED)).unwrap();
        std::fs::write(dir.path().join(RECYCLED).join("7"), [b'x'; 100]).unwrap();
        let key = BlobKey::original(JobId::new());
        store.put(&key, Bytes::from_static(b"short")).await.unwrap();
        assert!(kept(&store).is_empty());
        assert_eq!(store.get(&key).await.unwrap().unwrap(), "short");
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
        assert!(!dir.path().join(RECYCLED).exists());
    }
}
