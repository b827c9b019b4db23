//! thumbd-s3: thumbd's [`BlobStore`](thumbd_jobs::BlobStore) on S3-compatible object storage
//! (AWS S3, MinIO, Garage, Ceph RGW, moto, …), for `THUMBD_STORAGE_URL=s3://…`.
//!
//! - [`S3Location`]: the bucket, endpoint, region and key prefix, parsed from
//!   `s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1` and safe to log.
//! - [`S3BlobStore`]: the store, built on object_store's `AmazonS3` with bounded timeouts and
//!   retries; credentials come from the standard `AWS_*` variables (or [`S3Credentials`] in
//!   [`S3Options`]) and are never printed. It passes `thumbd_jobs::conformance::blob_store`
//!   against a real S3-compatible server (`tests/s3.rs`).
//!
//! TLS is rustls with the *ring* provider, which [`S3BlobStore::open`] installs as the
//! process default if there is none: aws-lc-rs, whose build script costs minutes, stays out
//! of the build.
//!
//! ```
//! use thumbd_s3::{S3BlobStore, S3Location};
//!
//! let url = "s3://thumbs?endpoint=http://127.0.0.1:9000&region=us-east-1&prefix=prod";
//! let location = S3Location::parse(url)?;
//! assert_eq!((location.bucket.as_str(), location.allow_http), ("thumbs", true));
//! assert_eq!(location.to_string(), url);
//!
//! // No request yet: `ping` (for /readyz) is the first round trip.
//! let blobs = S3BlobStore::from_url(url)?;
//! assert_eq!(blobs.location(), &location);
//! # Ok::<(), thumbd_jobs::Error>(())
//! ```

mod location;
mod store;

pub use location::S3Location;
pub use store::{S3BlobStore, S3Credentials, S3Options};
