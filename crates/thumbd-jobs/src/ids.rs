//! Validated identifiers: every value that crosses a trust boundary is parsed here once.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A job's id: a UUID, version 7 when thumbd makes it (time-ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(uuid::Uuid);

impl JobId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        JobId(uuid::Uuid::now_v7())
    }

    /// A stable id for a queue message that came without one, derived from its body: every
    /// redelivery of the message maps to the same job (a UUID version 8).
    pub fn derived_from(body: &[u8]) -> Self {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(body);
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        JobId(uuid::Uuid::new_v8(bytes))
    }

    /// Parses the hyphenated (or simple) text form.
    pub fn parse(s: &str) -> Result<Self> {
        uuid::Uuid::try_parse(s)
            .map(JobId)
            .map_err(|_| Error::invalid("jobId", format!("{s:?} is not a UUID")))
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// What every validated text newtype here has besides its `parse`: `as_str`, conversions
/// from and into `String` (serde goes through them, so deserializing validates) and
/// `Display`.
macro_rules! text_newtype {
    ($t:ident) => {
        impl $t {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $t {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::parse(&s)
            }
        }

        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A client's name for a thumbnail: 1–255 bytes of UTF-8, any characters.
///
/// It is a key in the metadata store and never part of a file path or blob key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ThumbnailId(String);

/// The rule for the names clients choose (thumbnail and context ids): 1–255 bytes.
fn client_key(what: &'static str, s: &str) -> Result<String> {
    match s.len() {
        0 => Err(Error::invalid(what, "must not be empty")),
        n if n > ThumbnailId::MAX_BYTES => Err(Error::invalid(
            what,
            format!(
                "is {n} bytes; at most {} are allowed",
                ThumbnailId::MAX_BYTES
            ),
        )),
        _ => Ok(s.to_owned()),
    }
}

impl ThumbnailId {
    /// Longest accepted id, in bytes (context ids and idempotency keys share the rule).
    pub const MAX_BYTES: usize = 255;

    /// Checks the length rule of the API (1–255 bytes of UTF-8).
    pub fn parse(s: &str) -> Result<Self> {
        client_key("thumbnailId", s).map(ThumbnailId)
    }
}

text_newtype!(ThumbnailId);

/// A client's name for a context (ClassKit): 1–255 bytes of UTF-8, any characters; a key,
/// like [`ThumbnailId`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContextId(String);

impl ContextId {
    /// Checks the length rule (the same as a thumbnailId's).
    pub fn parse(s: &str) -> Result<Self> {
        client_key("contextId", s).map(ContextId)
    }
}

text_newtype!(ContextId);

/// An upload ticket (`POST /v1/uploads`): `up_` and 32 lowercase hex digits of a random
/// 128-bit number. Unguessable, so holding one is the right to use the upload.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UploadTicket(String);

impl UploadTicket {
    /// A fresh random ticket.
    pub fn generate() -> Self {
        UploadTicket(format!("up_{:032x}", rand::random::<u128>()))
    }

    /// Parses a ticket a client sent.
    pub fn parse(s: &str) -> Result<Self> {
        let valid = s.len() == 35
            && s.starts_with("up_")
            && s[3..]
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if valid {
            Ok(UploadTicket(s.to_owned()))
        } else {
            Err(Error::invalid(
                "uploadTicket",
                format!("{s:?} is not an upload ticket"),
            ))
        }
    }
}

text_newtype!(UploadTicket);

/// One of the two isolated namespaces of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// `development`
    Development,
    /// `production`
    Production,
}

impl Environment {
    /// Parses `development` or `production` (exactly; no other spelling).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "development" => Ok(Environment::Development),
            "production" => Ok(Environment::Production),
            _ => Err(Error::invalid(
                "environment",
                format!("{s:?} is not one of \"development\", \"production\""),
            )),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose data a key belongs to (README, "Tenants"): 1–64 characters of `[A-Za-z0-9._-]`,
/// from the
/// caller's token (or a queue producer's message); [`Tenant::default`] is `default`, the
/// tenant of a token without the claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tenant(String);

impl Tenant {
    /// The tenant of tokens and messages that name none.
    pub const DEFAULT: &str = "default";

    /// Checks the tenant rule.
    pub fn parse(s: &str) -> Result<Self> {
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if (1..=64).contains(&s.len()) && s.chars().all(ok) {
            Ok(Tenant(s.to_owned()))
        } else {
            Err(Error::invalid(
                "tenant",
                format!("{s:?} is not 1-64 characters of A-Z a-z 0-9 . _ -"),
            ))
        }
    }

    /// Whether this is [`Tenant::DEFAULT`].
    pub fn is_default(&self) -> bool {
        self.0 == Self::DEFAULT
    }
}

impl Default for Tenant {
    fn default() -> Self {
        Tenant(Self::DEFAULT.to_owned())
    }
}

text_newtype!(Tenant);

/// The scope of every client key (README, "Tenants"): a tenant's environment. Two
/// namespaces never see
/// each other's thumbnails, contexts, uploads, jobs or idempotency keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace {
    /// Whose.
    pub tenant: Tenant,
    /// Which of the tenant's two environments.
    pub environment: Environment,
}

impl Namespace {
    /// `environment` of `tenant`.
    pub fn new(tenant: Tenant, environment: Environment) -> Self {
        Namespace {
            tenant,
            environment,
        }
    }

    /// `environment` of the default tenant.
    pub fn default_tenant(environment: Environment) -> Self {
        Namespace::new(Tenant::default(), environment)
    }

    /// How the stores key rows by namespace (in the column named `environment`): the
    /// environment alone for the default tenant — every row written before tenants existed
    /// keeps its meaning — else `TENANT/ENVIRONMENT` (a tenant never contains `/`).
    pub fn key(&self) -> String {
        if self.tenant.is_default() {
            self.environment.as_str().to_owned()
        } else {
            format!("{}/{}", self.tenant.as_str(), self.environment.as_str())
        }
    }

    /// Reads a [`Namespace::key`] back.
    pub fn from_key(key: &str) -> Result<Self> {
        match key.split_once('/') {
            None => Ok(Namespace::default_tenant(Environment::parse(key)?)),
            Some((tenant, environment)) => Ok(Namespace::new(
                Tenant::parse(tenant)?,
                Environment::parse(environment)?,
            )),
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.environment)
    }
}

/// A key in a [`BlobStore`](crate::BlobStore): made by thumbd, never from a client's id.
///
/// Segments of `[a-z0-9._-]` separated by `/`, no empty, `.` or `..` segment, at most 200
/// bytes, so every backend can map it to a path or object name safely.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BlobKey(String);

impl BlobKey {
    /// Validates a key (e.g. one a queue producer sent).
    pub fn parse(s: &str) -> Result<Self> {
        let ok_char = |c: char| matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-');
        let valid = !s.is_empty()
            && s.len() <= 200
            && s.split('/').all(|seg| {
                !seg.is_empty() && seg != "." && seg != ".." && seg.chars().all(ok_char)
            });
        if valid {
            Ok(BlobKey(s.to_owned()))
        } else {
            Err(Error::invalid(
                "blobKey",
                format!("{s:?} is not a blob key (segments of a-z 0-9 . _ - separated by /)"),
            ))
        }
    }

    /// Where the original of a job is kept until the job finishes (the claim check).
    pub fn original(job: JobId) -> Self {
        BlobKey(format!("originals/{}", job.0.simple()))
    }

    /// Where an upload's bytes are kept until the ticket expires.
    pub fn upload(ticket: &UploadTicket) -> Self {
        BlobKey(format!("uploads/{}", ticket.0))
    }

    /// The key of a job's thumbnail: `thumbnails/<sha[..2]>/<sha256 hex>-<job>`.
    ///
    /// Named by content and by job, so no two records ever share a blob: deleting one
    /// thumbnail cannot race with another job writing the same bytes.
    pub fn thumbnail(sha256_hex: &str, job: JobId) -> Self {
        let fan = sha256_hex.get(..2).unwrap_or("00");
        BlobKey(format!("thumbnails/{fan}/{sha256_hex}-{}", job.0.simple()))
    }

    /// Where job `job` keeps the source of its rendition number `index` (in the profile's
    /// order) until the background lane has made it: `sources/<job>-<index>`.
    pub fn rendition_source(job: JobId, index: usize) -> Self {
        BlobKey(format!("sources/{}-{index}", job.0.simple()))
    }

    /// Whether this is a job's original ([`BlobKey::original`]).
    pub fn is_original(&self) -> bool {
        self.0.starts_with("originals/")
    }
}

text_newtype!(BlobKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_id_lengths() {
        assert!(ThumbnailId::parse("").is_err());
        assert!(ThumbnailId::parse(&"é".repeat(127)).is_ok()); // 254 bytes
        assert!(ThumbnailId::parse(&"a".repeat(255)).is_ok());
        assert!(ThumbnailId::parse(&"a".repeat(256)).is_err());
        assert!(ThumbnailId::parse("../../etc/passwd\0 ok").is_ok());
    }

    #[test]
    fn environment_spelling() {
        assert_eq!(
            Environment::parse("production").unwrap(),
            Environment::Production
        );
        assert!(Environment::parse("Production").is_err());
        assert!(Environment::parse("").is_err());
    }

    #[test]
    fn blob_keys() {
        for ok in ["originals/abc", "thumbnails/0f", "a.b_c-d/e"] {
            assert!(BlobKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/abs", "a//b", "a/../b", "..", "A", "a\\b", "a/", "ü"] {
            assert!(BlobKey::parse(bad).is_err(), "{bad}");
        }
        assert!(BlobKey::parse(BlobKey::original(JobId::new()).as_str()).is_ok());
    }

    #[test]
    fn job_id_round_trip() {
        let id = JobId::new();
        assert_eq!(JobId::parse(&id.to_string()).unwrap(), id);
        assert!(JobId::parse("nope").is_err());
    }
}
