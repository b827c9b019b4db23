//! `Durability`: what a write that returned has survived.

/// How hard the embedded backends work to keep a returned write.
///
/// Both keep every accepted job when thumbd itself is killed (`kill -9`, a crash, an OOM
/// kill): SQLite runs in WAL mode and blobs are written to a temporary file and renamed.
/// They differ when the machine itself stops (power loss, kernel panic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Power-safe: SQLite `synchronous=FULL` and every blob (and its directory) fsynced
    /// before the write returns. The default.
    #[default]
    Full,
    /// Survives the process, not the machine: SQLite `synchronous=NORMAL` and no fsync. The
    /// last writes before a power loss may be lost; the database is never corrupted.
    Process,
}

impl Durability {
    /// Parses `full` or `process`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(Durability::Full),
            "process" => Some(Durability::Process),
            _ => None,
        }
    }
}
