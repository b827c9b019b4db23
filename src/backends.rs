//! Opening the three backends a process uses, from settings: the embedded ones (SQLite,
//! files) or the distributed ones (PostgreSQL, RabbitMQ, a shared blob directory).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use secrecy::ExposeSecret as _;
use thumbd_amqp::{AmqpJobQueue, AmqpOptions};
use thumbd_jobs::{
    BlobStore, FsBlobStore, JobQueue, MetaStore, SqliteDb, SqliteJobQueue, SqliteMetaStore,
};

use crate::role::Role;
use crate::settings::{Database, Settings, Storage};

/// How long a leased job stays invisible in the embedded queue without a heartbeat. Only
/// matters for a worker that hangs: a killed `serve` hands its leases back when it starts.
const VISIBILITY: Duration = Duration::from_secs(60);

/// The open backends.
pub struct Backends {
    /// Jobs and thumbnails.
    pub store: Arc<dyn MetaStore>,
    /// Where jobs wait.
    pub queue: Arc<dyn JobQueue>,
    /// Where webhook deliveries wait: the same backend, a lane of its own (the embedded
    /// queue's `webhooks` lane; RabbitMQ queues under `AMQP_NAMESPACE.webhooks`).
    pub webhook_queue: Arc<dyn JobQueue>,
    /// Where deferred (AVIF) renditions wait: a lane of its own (`renditions`; RabbitMQ
    /// queues under `AMQP_NAMESPACE.renditions`).
    pub rendition_queue: Arc<dyn JobQueue>,
    /// Originals and thumbnails.
    pub blobs: Arc<dyn BlobStore>,
    /// For the banner: which backends these are.
    pub description: String,
    sqlite: Option<SqliteDb>,
    amqp: Vec<Arc<AmqpJobQueue>>,
    postgres: Option<thumbd_postgres::PgMetaStore>,
}

impl Backends {
    /// Opens (and migrates) the backends the settings name, checking they suit `role`.
    pub async fn open(settings: &Settings, role: Role) -> anyhow::Result<Self> {
        if role != Role::Serve && settings.amqp_url.is_none() {
            bail!(
                "`thumbd {}` needs amqp_url (THUMBD_AMQP_URL): the embedded queue lives inside one `thumbd serve` process",
                role.name()
            );
        }
        let mut sqlite = None;
        let mut open_sqlite = async |path: &std::path::Path| -> anyhow::Result<SqliteDb> {
            if let Some(db) = &sqlite {
                return Ok(SqliteDb::clone(db));
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let db = SqliteDb::open_with(path, settings.durability)
                .await
                .with_context(|| format!("cannot open the database {}", path.display()))?;
            sqlite = Some(db.clone());
            Ok(db)
        };

        let mut postgres = None;
        let (store, store_name): (Arc<dyn MetaStore>, String) = match &settings.database {
            Database::Sqlite(path) => (
                Arc::new(SqliteMetaStore::new(open_sqlite(path).await?)),
                format!("SQLite {}", path.display()),
            ),
            Database::Postgres(url) => {
                let store = thumbd_postgres::PgMetaStore::connect(url.expose_secret())
                    .await
                    .context("cannot open the PostgreSQL store")?;
                postgres = Some(store.clone());
                (Arc::new(store), thumbd_jobs::redact(url.expose_secret()))
            }
        };

        let mut amqp = Vec::new();
        // The lanes: image jobs, webhook deliveries, deferred renditions.
        let ([queue, webhook_queue, rendition_queue], queue_name): (
            [Arc<dyn JobQueue>; 3],
            String,
        ) = match &settings.amqp_url {
            Some(url) => {
                let jobs = AmqpOptions {
                    // The jobs a worker holds at once: `prefetch`, and as many more
                    // waiting on their URL sources (WorkerOptions::downloads).
                    prefetch: u16::try_from(settings.prefetch + settings.downloads)
                        .unwrap_or(u16::MAX),
                    namespace: settings.amqp_namespace.clone(),
                    ..AmqpOptions::default()
                };
                // One retry queue per wait of the schedule: each retry waits exactly.
                let retry_delays = settings.webhook_retry_schedule.clone();
                let webhooks = AmqpOptions {
                    prefetch: u16::try_from(settings.webhook_concurrency).unwrap_or(u16::MAX),
                    namespace: format!("{}.{}", settings.amqp_namespace, thumbd_jobs::WEBHOOK_LANE),
                    retry_delays,
                    ..AmqpOptions::default()
                };
                // One message at a time per worker: the lane has one thread.
                let renditions = AmqpOptions {
                    prefetch: 1,
                    namespace: format!(
                        "{}.{}",
                        settings.amqp_namespace,
                        thumbd_jobs::RENDITION_LANE
                    ),
                    ..AmqpOptions::default()
                };
                for options in [jobs, webhooks, renditions] {
                    let queue = Arc::new(
                        AmqpJobQueue::new(url.expose_secret(), options)
                            .map_err(|e| anyhow::anyhow!("amqp_url: {e}"))?,
                    );
                    queue
                        .connect()
                        .await
                        .context("cannot reach RabbitMQ (amqp_url)")?;
                    amqp.push(queue);
                }
                (
                    [amqp[0].clone(), amqp[1].clone(), amqp[2].clone()],
                    thumbd_jobs::redact(url.expose_secret()),
                )
            }
            None => {
                let path = match &settings.database {
                    Database::Sqlite(path) => path.clone(),
                    Database::Postgres(_) => settings.data_dir.join("thumbd.db"),
                };
                let db = open_sqlite(&path).await?;
                let lock = path.with_extension("queue-lock");
                let queue = SqliteJobQueue::open(db, &lock, VISIBILITY).await?;
                let webhooks = queue.lane(thumbd_jobs::WEBHOOK_LANE);
                let renditions = queue.lane(thumbd_jobs::RENDITION_LANE);
                (
                    [Arc::new(queue), Arc::new(webhooks), Arc::new(renditions)],
                    "embedded queue".into(),
                )
            }
        };

        let (blobs, blobs_name): (Arc<dyn BlobStore>, String) = match &settings.storage {
            Storage::Files(dir) => {
                let blobs = FsBlobStore::open(dir)
                    .with_context(|| format!("cannot open the blob directory {}", dir.display()))?
                    .with_durability(settings.durability);
                (Arc::new(blobs), dir.display().to_string())
            }
            Storage::S3(url) => {
                let blobs = thumbd_s3::S3BlobStore::from_url(url)
                    .map_err(|e| anyhow::anyhow!("storage_url: {e}"))?;
                blobs
                    .ping()
                    .await
                    .context("cannot reach the S3 bucket (storage_url)")?;
                (Arc::new(blobs), url.clone())
            }
        };
        Ok(Backends {
            description: format!("store: {store_name}; queue: {queue_name}; blobs: {blobs_name}"),
            store,
            queue,
            webhook_queue,
            rendition_queue,
            blobs,
            sqlite,
            amqp,
            postgres,
        })
    }

    /// Tells `events` of jobs finished by other processes, where the store can (PostgreSQL's
    /// `NOTIFY`), so waiting requests answer at once rather than at their next poll.
    pub fn forward_finished(&self, events: &thumbd_jobs::JobEvents) {
        if let Some(pg) = &self.postgres {
            pg.forward_finished(events.clone());
        }
    }

    /// Closes connections cleanly (unsettled RabbitMQ deliveries go back to the queue).
    pub async fn close(self) {
        for amqp in self.amqp {
            amqp.close().await;
        }
        if let Some(db) = self.sqlite {
            db.close().await;
        }
        if let Some(pg) = self.postgres {
            pg.close().await;
        }
    }
}
