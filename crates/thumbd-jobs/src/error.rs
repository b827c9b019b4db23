//! The one error type of thumbd-jobs.

/// What went wrong in the job model or a backend.
///
/// [`Error::Invalid`] is the caller's fault (a bad id, a malformed queue message); every other
/// variant is the backend's and may go away on a retry ([`Error::is_transient`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value failed validation: `what` names it (`thumbnailId`, `environment`, …).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The field or value that failed.
        what: &'static str,
        /// Why, in words a client can act on.
        reason: String,
    },
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A file operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A stored row or blob could not be read back (schema drift, manual edits).
    #[error("stored data is damaged: {0}")]
    Damaged(String),
    /// A remote backend (the message broker, object storage) is down, refusing or too slow.
    #[error("{backend} unavailable: {reason}")]
    Unavailable {
        /// Which backend: `RabbitMQ`, `S3`…
        backend: &'static str,
        /// What happened, for the logs.
        reason: String,
    },
    /// Another process holds the data directory of the embedded backends.
    #[error("{0} is in use by another thumbd process (embedded backends are single-process)")]
    Locked(std::path::PathBuf),
}

impl Error {
    /// A [`Error::Unavailable`] for `backend`.
    pub fn unavailable(backend: &'static str, reason: impl std::fmt::Display) -> Self {
        Error::Unavailable {
            backend,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            reason: reason.into(),
        }
    }

    /// True when retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Database(_) | Error::Io(_) | Error::Unavailable { .. }
        )
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Damaged(e.to_string())
    }
}

/// thumbd-jobs' result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
