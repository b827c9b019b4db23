//! thumbd-postgres: the [`MetaStore`](thumbd_jobs::MetaStore) on PostgreSQL, for deployments
//! where several API and worker processes share one database (the queue is then RabbitMQ).
//!
//! - [`PgMetaStore`]: jobs and thumbnails with the SQLite store's semantics, checked by the
//!   same `thumbd_jobs::conformance` suite. Each method is one statement or
//!   one transaction with row locks, so processes racing on one job or one thumbnail agree:
//!   a job finishes once, and the job accepted last is the one served.
//! - Migrations: SQL files embedded in the binary, applied by [`PgMetaStore::migrate`] (and
//!   on [`connect`](PgMetaStore::connect)) under an advisory lock, so processes starting
//!   together migrate once.
//! - [`TestSchema`]: a throwaway schema per test, so tests share one database.
//!
//! ```no_run
//! use thumbd_jobs::{Environment, MetaStore, Namespace, Tenant, ThumbnailId, ThumbnailStore};
//! use thumbd_postgres::PgMetaStore;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = PgMetaStore::connect("postgres://thumbd@db.internal/thumbd").await?;
//! store.ping().await?;
//! let id = ThumbnailId::parse("cover/42")?;
//! let acme = Namespace::new(Tenant::parse("acme")?, Environment::Production);
//! if let Some(thumb) = store.thumbnail(&acme, &id).await? {
//!     println!("{id} is {} bytes at {}", thumb.result.bytes, thumb.result.blob_key);
//! }
//! # Ok::<(), thumbd_jobs::Error>(()) }).unwrap();
//! ```

mod migrate;
mod store;
mod test_schema;

pub use store::{FINISHED_CHANNEL, PgMetaStore};
pub use test_schema::TestSchema;
