//! `FetchError`: why a URL source could not be fetched, with its stable code.

use thumbd_codes::Code;

/// The cause of a failure, kept for the logs (never in the message).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why [`Fetcher::fetch`](crate::Fetcher::fetch) failed.
///
/// `Display` is a message for the client that owns the job: it names what went wrong
/// without internals (no resolved addresses, no library errors). The underlying error, when
/// there is one, is the [`source`](std::error::Error::source), for the logs.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// `SourceNotAllowed`: a scheme other than http(s), credentials in the URL, or an
    /// address the guard refuses (given literally, resolved from a name, or on a redirect).
    #[error("{0}")]
    NotAllowed(&'static str),
    /// `SourceFetchFailed`: no usable answer (name resolution, connection, TLS, timeout,
    /// a status other than 2xx, too many redirects, a body cut short).
    #[error("{message}")]
    Failed {
        /// For the client.
        message: String,
        /// Whether trying again later may work (see [`FetchError::is_transient`]).
        transient: bool,
        /// What happened underneath, for the logs.
        #[source]
        cause: Option<Cause>,
    },
    /// `SourceTooLarge`: the body is over [`FetchOptions::max_bytes`](crate::FetchOptions),
    /// by its `Content-Length` or while streaming; no more than the limit was read.
    #[error("the source is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl FetchError {
    /// The stable code: `SourceNotAllowed`, `SourceFetchFailed` or `SourceTooLarge`.
    pub fn code(&self) -> Code {
        match self {
            FetchError::NotAllowed(_) => Code::SourceNotAllowed,
            FetchError::Failed { .. } => Code::SourceFetchFailed,
            FetchError::TooLarge { .. } => Code::SourceTooLarge,
        }
    }

    /// Whether the same fetch may succeed if tried again later: connection errors, name
    /// resolution failures, timeouts, bodies cut short, `408`, `429` and `5xx` answers.
    /// Not: other statuses, TLS failures, too many redirects, refusals, oversized bodies.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FetchError::Failed {
                transient: true,
                ..
            }
        )
    }

    /// The message worded for a webhook endpoint ([`Fetcher::post`](crate::Fetcher::post),
    /// [`check_destination`](crate::check_destination)): the messages name what a fetch
    /// reaches, "the source".
    pub fn endpoint_message(&self) -> String {
        self.to_string()
            .replace("source URLs", "webhook URLs")
            .replace("https sources", "https URLs")
            .replace("the source", "the endpoint")
    }

    pub(crate) fn failed(
        message: impl Into<String>,
        transient: bool,
        cause: Option<Cause>,
    ) -> Self {
        FetchError::Failed {
            message: message.into(),
            transient,
            cause,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_messages_do_not_speak_of_sources() {
        let cases = [
            (
                FetchError::NotAllowed("the source's address is not allowed"),
                "the endpoint's address is not allowed",
            ),
            (
                FetchError::NotAllowed("only http and https sources are allowed"),
                "only http and https URLs are allowed",
            ),
            (
                FetchError::NotAllowed("source URLs may not contain credentials"),
                "webhook URLs may not contain credentials",
            ),
            (
                FetchError::failed("the source could not be reached", true, None),
                "the endpoint could not be reached",
            ),
        ];
        for (e, wanted) in cases {
            assert_eq!(e.endpoint_message(), wanted);
        }
    }
}
