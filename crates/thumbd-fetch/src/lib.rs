//! thumbd-fetch: downloads the images of URL sources (`{"url": "https://…"}` jobs) without
//! letting a URL reach what it should not (SSRF).
//!
//! - [`Fetcher`]: [`Fetcher::fetch`] returns the body of an http(s) URL, following at most
//!   [`FetchOptions::max_redirects`] redirects, within [`FetchOptions::timeout`], refusing
//!   bodies over [`FetchOptions::max_bytes`] from their `Content-Length` or while streaming
//!   (never more than the limit is held in memory).
//! - [`FetchOptions`]: the limits, and whether private addresses are allowed (tests, closed
//!   networks; `THUMBD_ALLOW_PRIVATE_SOURCES`). `Default` is what production uses.
//! - [`FetchError`]: `SourceNotAllowed`, `SourceFetchFailed` or `SourceTooLarge`
//!   ([`FetchError::code`]), a message safe to show the client, and
//!   [`FetchError::is_transient`] for the worker's retry decision.
//! - [`refused_range`]: the address classification the guard uses.
//!
//! # The guard
//! Unless [`FetchOptions::allow_private`], every URL on the way (the first and each
//! redirect's) must be http or https without credentials, its literal IP address (in any
//! form the URL parser accepts: `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`…) must be
//! public, and a host name must resolve only to public addresses — checked by the resolver
//! when each hop connects, on the very addresses connected to. Proxy variables are ignored.
//!
//! # TLS roots
//! rustls with *ring* (as thumbd-s3: aws-lc-rs's build costs minutes) and reqwest 0.13's
//! built-in verifier, rustls-platform-verifier, which on Linux reads the system's root
//! certificates (`/etc/ssl/certs`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`). It is already in
//! the build (reqwest's `rustls-no-provider` feature pulls it for object_store), so this
//! crate adds nothing to compile; the roots are updated with the OS (the Docker image
//! installs `ca-certificates`), and an operator can add a private CA the usual way. The
//! alternative, bundled Mozilla roots (`webpki-roots`), would add a crate under the
//! CDLA-Permissive-2.0 licence (the project takes MIT/Apache only) and roots that age
//! with the binary.
//!
//! ```
//! use std::time::Duration;
//! use thumbd_fetch::{FetchOptions, Fetcher};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let fetcher = Fetcher::new(FetchOptions {
//!     timeout: Duration::from_secs(10),
//!     ..FetchOptions::default()
//! });
//! // Refused before any connection: the cloud metadata service is link-local.
//! let e = fetcher.fetch("http://169.254.169.254/latest/meta-data/").await.unwrap_err();
//! assert_eq!(e.code(), "SourceNotAllowed");
//! assert!(!e.is_transient());
//! # }
//! ```

mod address;
mod error;
mod fetcher;
mod guard;
mod options;

pub use address::refused_range;
pub use error::{Cause, FetchError};
pub use fetcher::{Fetcher, check_destination};
pub use options::FetchOptions;
pub use reqwest::{StatusCode, header};
