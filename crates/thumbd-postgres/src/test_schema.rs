//! Throwaway schemas, so tests can share one PostgreSQL database.

use std::str::FromStr as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use thumbd_jobs::Result;

use crate::PgMetaStore;

const PREFIX: &str = "thumbd_t_";

/// Schemas older than this are left over from a test that panicked before
/// [`TestSchema::remove`]; [`TestSchema::create`] drops them.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// For tests: a fresh, empty schema `thumbd_t_<created>_<random>` in a shared database, so a
/// test is isolated from the tests running beside it and from earlier runs.
///
/// Connections made through [`connect_options`](Self::connect_options) or [`url`](Self::url)
/// have it first on their `search_path`, so migrations create their tables there.
#[derive(Debug)]
pub struct TestSchema {
    url: String,
    name: String,
    admin: PgPool,
}

impl TestSchema {
    /// Creates a new schema in the database at `url`, after dropping stale ones.
    pub async fn create(url: &str) -> Result<Self> {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(PgConnectOptions::from_str(url)?)
            .await?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        drop_stale(&admin, now).await?;
        let name = format!("{PREFIX}{now:x}_{:016x}", rand::random::<u64>());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&admin)
            .await?;
        Ok(TestSchema {
            url: url.to_owned(),
            name,
            admin,
        })
    }

    /// The schema's name (letters, digits and `_`: no quoting needed).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Options for the database with this schema on the `search_path`.
    pub fn connect_options(&self) -> Result<PgConnectOptions> {
        Ok(PgConnectOptions::from_str(&self.url)?.options([("search_path", &self.name)]))
    }

    /// The database URL with this schema on the `search_path` (the `options` parameter), for
    /// a child process such as `thumbd serve`.
    pub fn url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}", self.url, self.name)
    }

    /// A migrated store in this schema, with a pool of its own.
    pub async fn store(&self) -> Result<PgMetaStore> {
        PgMetaStore::connect_with(self.connect_options()?).await
    }

    /// Drops the schema and everything in it.
    pub async fn remove(self) -> Result<()> {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.name
        )))
        .execute(&self.admin)
        .await?;
        self.admin.close().await;
        Ok(())
    }
}

/// Drops the test schemas created more than [`STALE_AFTER`] before `now` (seconds).
async fn drop_stale(admin: &PgPool, now: u64) -> Result<()> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname::text, $1)",
    )
    .bind(PREFIX)
    .fetch_all(admin)
    .await?;
    for name in names {
        let created = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|hex| u64::from_str_radix(hex, 16).ok());
        let stale = created.is_some_and(|c| now.saturating_sub(c) > STALE_AFTER.as_secs());
        let plain = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if stale && plain {
            // Another test may be dropping it too: losing that race is fine.
            let dropped = sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE"
            )))
            .execute(admin)
            .await;
            if let Err(e) = dropped {
                tracing::debug!(schema = name, error = %e, "could not drop a stale test schema");
            }
        }
    }
    Ok(())
}
