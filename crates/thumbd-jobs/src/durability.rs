//! `Durability`: what a write that returned has survived.

/// How hard the embedded backends work to keep a returned write.
///
/// Both keep every accepted job when thumbd itself is killed (`kill -9`, a crash, an OOM
/// kill): SQLite runs in WAL mode and blobs are written to a temporary file and renamed.
/// They differ when the machine itself stops (power loss, kernel panic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Power-safe acceptance: the commit that enqueues a job uses SQLite `synchronous=FULL`
    /// (syncing the WAL, and with it every earlier commit such as the job record)
    /// and every blob (and its directory) is fsynced before the write returns. A worker's
    /// progress commits use NORMAL: a power loss may undo the newest of them, which only
    /// makes those jobs run again. The default.
    #[default]
    Full,
    /// Survives the process, not the machine: SQLite `synchronous=NORMAL` everywhere and no
    /// fsync. Jobs accepted just before a power loss may be lost; the database is never
    /// corrupted.
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
