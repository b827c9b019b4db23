//! Every stable error code thumbd's clients can see, in one enum.
//!
//! A code is the `code` of an API error body (or of one of its `details`), and the `error.code`
//! of a failed job's status. thumbcore, the fetcher, the jobs crate, the worker and the API
//! all speak [`Code`]; the API alone maps a code to an HTTP status, and the worker alone
//! decides from it whether a job is retried, each with an exhaustive `match`, so a new code
//! does not build until both have decided what it means. The OpenAPI document's `code` enum
//! and the README's error table are generated from [`Code::ALL`].
//!
//! On the wire and in the stores a code is its name (`"CorruptImage"`); a name this version
//! does not know does not parse ([`UnknownCode`]).

use std::fmt;
use std::str::FromStr;

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident => $meaning:literal,)+) => {
        /// A stable error code. Its name is the wire form; see [`Code::meaning`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[$doc])* $name,)+
        }

        impl Code {
            /// Every code, in the order of the README's error table.
            pub const ALL: &'static [Code] = &[$(Code::$name,)+];

            /// The wire name: `"CorruptImage"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => stringify!($name),)+
                }
            }

            /// What the code means, for people: the OpenAPI description and the README.
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(Code::$name => $meaning,)+
                }
            }
        }
    };
}

codes! {
    /// A query or path parameter is missing, repeated or invalid.
    InvalidQueryParameter => "a query or path parameter is missing, repeated or invalid (target: its name)",
    /// The JSON or multipart body is malformed or lacks a field.
    InvalidRequestBody => "the JSON or multipart body is malformed or lacks a field (target: the field)",
    /// No `Authorization` header.
    HeaderNotFound => "no `Authorization` header (target: authorization)",
    /// The bearer token is not valid.
    InvalidToken => "the bearer token is malformed, badly signed, expired or of the wrong algorithm",
    /// The token lacks the scope, or is limited to another environment.
    InsufficientPermissions => "the token lacks the scope, or is limited to the other environment",
    /// A signed URL's signature does not match, or it has expired.
    InvalidSignature => "a signed URL's `sig` does not match its path and query, or its `expires` has passed",
    /// No such thumbnail.
    ThumbnailNotFound => "no such thumbnail in this environment",
    /// The thumbnail has no (ready) rendition in the format asked for.
    RenditionNotFound => "the thumbnail's set has no ready rendition in the `format` asked for",
    /// No such job.
    JobNotFound => "no such job",
    /// No such context.
    ContextNotFound => "no such context in this environment",
    /// No such upload ticket.
    UploadTicketNotFound => "no such upload ticket, or it has expired",
    /// No such webhook endpoint in this environment.
    WebhookNotFound => "no such webhook endpoint in this environment",
    /// No such endpoint.
    RouteNotFound => "no such endpoint",
    /// The endpoint exists, not with this method.
    MethodNotAllowed => "the endpoint exists, not with this method",
    /// The body is over the size limit.
    RequestTooLarge => "the body is over the limit (decided from Content-Length or while streaming)",
    /// The image or its headers are not acceptable; a detail says why.
    InvalidThumbnailRequest => "the image or its headers are not acceptable; `details[0]` says why",
    /// No `Content-Type`.
    MissingRequiredHeader => "no `Content-Type` (target: content-type)",
    /// An unsupported `Content-Type` or a bad `Idempotency-Key`.
    InvalidHeaderValue => "an unsupported `Content-Type` (e.g. image/gif) or a bad `Idempotency-Key`",
    /// The bytes are not an accepted image format, or not the declared type.
    InvalidThumbnailFormat => "the bytes are not an accepted image format (`accept_formats`), or not the declared type",
    /// Under the minimum size after orientation.
    ThumbnailTooSmall => "under 80×80 pixels after orientation",
    /// Over the pixel limit.
    ImageDimensionsTooLarge => "over the pixel limit",
    /// The image cannot be decoded.
    CorruptImage => "the image cannot be decoded",
    /// Making the thumbnail took longer than the job time limit.
    ProcessingTimeout => "making the thumbnail took longer than the job time limit",
    /// Over the client's rate limit.
    TooManyRequests => "over this client's rate limit; retry after `Retry-After` seconds",
    /// The URL source could not be downloaded.
    SourceFetchFailed => "the URL source could not be downloaded",
    /// The URL source points somewhere thumbd may not go.
    SourceNotAllowed => "the URL source points somewhere thumbd may not go",
    /// The URL source is over the size limit.
    SourceTooLarge => "the URL source is over the size limit",
    /// The webhook URL is not http(s), carries credentials, or points at a non-public address.
    WebhookUrlNotAllowed => "the webhook URL is not http(s), carries credentials, or points somewhere thumbd may not go (private addresses need `allow_private_webhooks`)",
    /// A bug or an inconsistency; the cause is in the server's log.
    InternalError => "a bug or an inconsistency; the cause is in the server's log, not the body",
    /// A store, queue or blob store is unreachable.
    ServiceUnavailable => "the store, queue or blob store is unreachable; retry after `Retry-After`",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A code equals its wire name: `Code::CorruptImage == "CorruptImage"`.
impl PartialEq<&str> for Code {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}

/// A name that is not one of [`Code::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCode(pub String);

impl fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not an error code", self.0)
    }
}

impl std::error::Error for UnknownCode {}

impl FromStr for Code {
    type Err = UnknownCode;

    fn from_str(s: &str) -> Result<Self, UnknownCode> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode(s.to_owned()))
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for &code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(code.as_str().parse::<Code>(), Ok(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<Code>(&json).unwrap(), code);
            assert!(!code.meaning().is_empty());
        }
        assert_eq!(
            "NotACode".parse::<Code>(),
            Err(UnknownCode("NotACode".into()))
        );
        assert!(serde_json::from_str::<Code>("\"corruptimage\"").is_err());
    }
}
