//! thumbd-jobs: the job model and the three storage roles every thumbd process uses.
//!
//! - Identifiers, validated once with `parse`: [`JobId`], [`ThumbnailId`] (1–255 bytes, any
//!   characters, never a path), [`Environment`], [`Tenant`], [`BlobKey`] (made by thumbd);
//!   a [`Namespace`] (a tenant's environment) scopes every client key.
//! - The model: [`JobMessage`] (the public queue message, README, Distributed mode), [`JobRecord`] and its
//!   [`JobStatus`], [`ThumbnailRecord`].
//! - The roles, as object-safe traits: [`JobQueue`] (leases, ack, retry, dead-letter),
//!   [`MetaStore`] (jobs and thumbnails, transactional), [`BlobStore`] (bytes by key).
//! - Embedded backends for `thumbd serve`: [`SqliteMetaStore`] and [`SqliteJobQueue`] on
//!   one SQLite file in WAL mode ([`SqliteDb`]), and [`FsBlobStore`].
//! - Around the jobs: [`ContextRecord`]s that reference thumbnails, [`UploadRecord`]s named
//!   by an [`UploadTicket`], and [`IdempotencyKey`]s.
//! - [`webhooks`]: endpoints ([`WebhookRecord`]), the events written with the changes
//!   they announce, and the [`Dispatcher`] that queues their deliveries.
//! - [`JobEvents`]: in-process news of finished jobs for waiting requests; [`LocalWorker`]:
//!   the workers of the API's own process, which can take a job straight from its request.
//! - With the `testing` feature (backends' tests turn it on as a dev-dependency; the
//!   shipped binary is built without it): `conformance`, the checks every backend must
//!   pass, and `services`, how backend tests find RabbitMQ and PostgreSQL (or say SKIP).
//!
//! ```
//! use std::time::Duration;
//! use thumbd_jobs::{
//!     Environment, JobMessage, JobQueue, JobSource, SqliteDb, SqliteJobQueue, Tenant, ThumbnailId,
//! };
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let queue = SqliteJobQueue::unlocked(SqliteDb::in_memory().await?, Duration::from_secs(30));
//! let message = JobMessage {
//!     job_id: None,
//!     tenant: Tenant::default(),
//!     environment: Environment::parse("development")?,
//!     thumbnail_id: ThumbnailId::parse("cover/42")?,
//!     source: JobSource::Url { url: "https://example.com/cover.png".into() },
//!     reply_to: None,
//!     profile: None,
//! };
//! queue.push(&message).await?;
//! let lease = queue.lease(Duration::from_secs(1)).await?.expect("a message");
//! assert_eq!(JobMessage::parse(&lease.payload)?, message);
//! assert!(queue.ack(&lease).await?);
//! # Ok::<(), thumbd_jobs::Error>(()) }).unwrap();
//! ```

mod associations;
mod blob;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod durability;
mod error;
mod events;
mod fs_blob;
mod ids;
mod intake;
mod job;
mod listing;
mod local;
mod queue;
mod redact;
mod renditions;
pub mod rows;
pub mod schema;
#[cfg(any(test, feature = "testing"))]
pub mod services;
mod sqlite;
mod store;
mod timestamp;
pub mod webhooks;

pub use associations::{Claim, ContextChange, ContextRecord, IdempotencyKey, UploadRecord};
pub use blob::BlobStore;
pub use durability::Durability;
pub use error::{Error, Result};
pub use events::{FinishedJob, JobEvents};
pub use fs_blob::FsBlobStore;
pub use ids::{
    BlobKey, ContextId, Environment, JobId, Namespace, Tenant, ThumbnailId, UploadTicket,
};
pub use intake::{
    Accepted, CreateJob, IDEMPOTENCY_WINDOW, Intake, IntakeParts, NewSource, PublishMarks, Refused,
};
pub use job::{
    JobFailure, JobMessage, JobRecord, JobResult, JobSource, JobStatus, Placeholder,
    RenditionResult, RenditionStatus, SourceInfo, ThumbnailRecord,
};
pub use listing::{JobKey, JobQuery, ThumbnailQuery};
pub use local::{LocalRun, LocalWorker};
pub use queue::{JobQueue, Lease, LeaseToken, QueueDepth};
pub use redact::redact;
pub use renditions::{RENDITION_LANE, RenditionWork};
pub use sqlite::{JOB_LANE, SqliteDb, SqliteJobQueue, SqliteMetaStore};
pub use store::{
    AssociationStore, Finished, JobStore, MetaStore, RenditionsFinished, ThumbnailStore,
};
pub use thumbd_codes::Code;
pub use timestamp::Timestamp;
pub use webhooks::{
    AttemptRecord, DeliveryRecord, DeliveryState, Dispatcher, Event, EventType, NewWebhook,
    WEBHOOK_LANE, WebhookId, WebhookPut, WebhookRecord, WebhookSecret, WebhookStore,
};
