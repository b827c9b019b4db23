//! `S3BlobStore`: the `BlobStore` role on an S3-compatible bucket, through object_store.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectStore as _, ObjectStoreExt as _, PutPayload, RetryConfig,
    StaticCredentialProvider,
};
use secrecy::{ExposeSecret as _, SecretString};
use thumbd_jobs::{BlobKey, BlobStore, Error, Result};

use crate::location::S3Location;

const BACKEND: &str = "S3";

/// Access keys given in code rather than read from the environment.
///
/// `Debug` shows the key id only; the secret and the session token are never printed.
#[derive(Debug, Clone)]
pub struct S3Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: SecretString,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub session_token: Option<SecretString>,
}

/// How an [`S3BlobStore`] talks to the server.
///
/// The defaults bound every operation to well under a minute: a dead endpoint answers
/// [`Error::Unavailable`] in about a second (connection refused) or about
/// `retry_timeout + request_timeout` at worst (a black hole), never after minutes of retries.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// `None` (the default): the environment — `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, or, without those, web identity, the container's or the
    /// instance's role, as object_store finds them.
    pub credentials: Option<S3Credentials>,
    /// Time to open a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// Time for one whole request, body included. Default 30 s (a 5 MB original needs
    /// ~170 KB/s).
    pub request_timeout: Duration,
    /// Retries of a failed request (connection errors, 5xx, throttling). Default 2.
    pub max_retries: usize,
    /// No retry starts after this long since the first attempt. Default 10 s.
    pub retry_timeout: Duration,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            credentials: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
        }
    }
}

/// Blobs as objects in one S3-compatible bucket: `[PREFIX/]<key>`.
///
/// - `put` is one `PUT` (S3 replaces objects atomically; readers see the old object or the
///   new one), durable when the server answers.
/// - `get` of a missing key is `Ok(None)`; a missing *bucket* is [`Error::Unavailable`]
///   (when the server says `NoSuchBucket`), not a missing blob.
/// - `delete` is `HEAD` then `DELETE`: S3's `DELETE` succeeds whether or not the object
///   existed, and the trait reports which. Two concurrent deletes of one key may both answer
///   `true`; thumbd only uses the answer for logs and counts.
/// - `ping` lists an empty prefix: one cheap request that fails if the endpoint, the bucket or
///   the credentials do not work.
///
/// The credentials need `s3:GetObject`, `s3:PutObject`, `s3:DeleteObject` and `s3:ListBucket`
/// (without `ListBucket`, AWS answers 403 instead of 404 for a missing key).
///
/// Every network or server failure is [`Error::Unavailable`] with backend `"S3"` (transient);
/// a bad configuration is [`Error::Invalid`] at construction.
#[derive(Clone)]
pub struct S3BlobStore {
    /// Cheap to clone: object_store shares the client behind an `Arc`.
    store: AmazonS3,
    location: S3Location,
}

impl S3BlobStore {
    /// A store for a storage URL (see [`S3Location`]) with the default [`S3Options`]:
    /// credentials from the environment.
    ///
    /// Makes no request; call [`BlobStore::ping`] to check the bucket.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed URL or an inconsistent environment (an access key id
    /// without its secret, …).
    pub fn from_url(url: &str) -> Result<Self> {
        Self::open(S3Location::parse(url)?, S3Options::default())
    }

    /// A store for `location`: `AmazonS3Builder::from_env()` first, then the location's
    /// parts and `options` on top (they win over `AWS_*` variables).
    ///
    /// Installs rustls's *ring* provider as the process default if none is installed yet
    /// (reqwest is built without one, to keep aws-lc-rs out of the build).
    ///
    /// # Errors
    /// [`Error::Invalid`] when object_store refuses the configuration.
    pub fn open(location: S3Location, options: S3Options) -> Result<Self> {
        // Err means another provider is already the default, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let client = |key| AmazonS3ConfigKey::Client(key);
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&location.bucket)
            .with_config(
                client(ClientConfigKey::ConnectTimeout),
                duration_text(options.connect_timeout),
            )
            .with_config(
                client(ClientConfigKey::Timeout),
                duration_text(options.request_timeout),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: options.max_retries,
                retry_timeout: options.retry_timeout,
            });
        if location.allow_http {
            // Only ever to allow: `AWS_ALLOW_HTTP=true` with `AWS_ENDPOINT_URL` still works.
            builder = builder.with_allow_http(true);
        }
        if let Some(endpoint) = &location.endpoint {
            // Both keys: `AWS_ENDPOINT_URL_S3` in the environment would beat a generic one.
            builder = builder
                .with_endpoint(endpoint)
                .with_config(AmazonS3ConfigKey::S3Endpoint, endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let Some(region) = &location.region {
            builder = builder.with_region(region);
        }
        if let Some(c) = &options.credentials {
            builder =
                builder.with_credentials(Arc::new(StaticCredentialProvider::new(AwsCredential {
                    key_id: c.access_key_id.clone(),
                    secret_key: c.secret_access_key.expose_secret().to_owned(),
                    token: c
                        .session_token
                        .as_ref()
                        .map(|t| t.expose_secret().to_owned()),
                })));
        }
        let store = builder.build().map_err(|e| Error::Invalid {
            what: "S3 configuration",
            reason: chain(&e),
        })?;
        Ok(S3BlobStore { store, location })
    }

    /// Where the blobs are: the bucket, endpoint, region and prefix (no credentials).
    pub fn location(&self) -> &S3Location {
        &self.location
    }

    fn path(&self, key: &BlobKey) -> Path {
        // Both parts use BlobKey's alphabet, which object_store's Path accepts as is.
        match &self.location.prefix {
            Some(prefix) => Path::from_iter(prefix.split('/').chain(key.as_str().split('/'))),
            None => Path::from_iter(key.as_str().split('/')),
        }
    }
}

/// Shows the location only: never the credentials object_store holds.
impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("location", &self.location.to_string())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        self.store
            .put(&self.path(key), PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| unavailable("PUT", key, &e))?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>> {
        let result = match self.store.get(&self.path(key)).await {
            Ok(result) => result,
            Err(e @ object_store::Error::NotFound { .. }) => {
                let text = chain(&e);
                return if text.contains("NoSuchBucket") {
                    Err(Error::unavailable(BACKEND, format!("GET {key}: {text}")))
                } else {
                    Ok(None)
                };
            }
            Err(e) => return Err(unavailable("GET", key, &e)),
        };
        let bytes = result
            .bytes()
            .await
            .map_err(|e| unavailable("GET (body)", key, &e))?;
        Ok(Some(bytes))
    }

    async fn delete(&self, key: &BlobKey) -> Result<bool> {
        let path = self.path(key);
        match self.store.head(&path).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(unavailable("HEAD", key, &e)),
        }
        match self.store.delete(&path).await {
            // NotFound: deleted by someone else since the HEAD; it existed.
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(unavailable("DELETE", key, &e)),
        }
    }

    async fn ping(&self) -> Result<()> {
        // A prefix thumbd never writes under (its keys start with `originals/` or
        // `thumbnails/`): one LIST with an empty answer, which, unlike a HEAD of a missing
        // key, fails when the bucket is missing or the credentials are refused.
        let probe = match &self.location.prefix {
            Some(prefix) => Path::from_iter(prefix.split('/').chain([".thumbd-ping"])),
            None => Path::from(".thumbd-ping"),
        };
        self.store
            .list_with_delimiter(Some(&probe))
            .await
            .map_err(|e| Error::unavailable(BACKEND, format!("LIST: {}", chain(&e))))?;
        Ok(())
    }
}

fn unavailable(op: &str, key: &BlobKey, e: &object_store::Error) -> Error {
    Error::unavailable(BACKEND, format!("{op} {key}: {}", chain(e)))
}

/// The error and its sources in one line, skipping a source its parent already quotes.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

fn duration_text(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_under_the_prefix() {
        let key = BlobKey::parse("thumbnails/ab/abc-1").unwrap();
        let plain = S3BlobStore::from_url("s3://b?endpoint=http://127.0.0.1:1").unwrap();
        assert_eq!(plain.path(&key).as_ref(), "thumbnails/ab/abc-1");
        let prefixed =
            S3BlobStore::from_url("s3://b?endpoint=http://127.0.0.1:1&prefix=t/one").unwrap();
        assert_eq!(prefixed.path(&key).as_ref(), "t/one/thumbnails/ab/abc-1");
    }

    #[test]
    fn secrets_are_never_shown() {
        let options = S3Options {
            credentials: Some(S3Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: SecretString::from("wJalrXUtnFEMI-secret"),
                session_token: Some(SecretString::from("session-token-secret")),
            }),
            ..S3Options::default()
        };
        let shown = format!("{options:?}");
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        let location = S3Location::parse("s3://b?endpoint=http://127.0.0.1:1").unwrap();
        let store = S3BlobStore::open(location, options).unwrap();
        let shown = format!("{shown} {store:?} {}", store.location());
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(!shown.contains("session-token"), "{shown}");
        assert!(
            shown.contains("s3://b?endpoint=http://127.0.0.1:1"),
            "{shown}"
        );
    }
}
