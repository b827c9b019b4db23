//! The webhook tables' SQL, written once for every SQL backend: each function returns a
//! [`QueryBuilder`] (placeholders are the backend's), which the backend runs on its own
//! connection or transaction and decodes with [`rows`](super::rows).

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::{AttemptRecord, DeliveryState, Event, WebhookId, WebhookRecord};
use crate::ids::Namespace;
use crate::timestamp::Timestamp;

/// What every statement here binds. (A trait alias would not carry these bounds to its users.)
pub trait Binds<DB: Database>: for<'q> Encode<'q, DB> + Type<DB> + Send + 'static {}
impl<DB: Database, T: for<'q> Encode<'q, DB> + Type<DB> + Send + 'static> Binds<DB> for T {}

/// Most endpoints a namespace lists.
pub const MAX_WEBHOOKS_LISTED: i64 = 1000;

/// In a transaction making the change it announces: one pending delivery of `event` for
/// every enabled endpoint of `namespace` subscribed to it, due for dispatch at once. A
/// repeated event (same id) adds nothing.
pub fn insert_event<DB>(namespace: &Namespace, event: &Event) -> QueryBuilder<DB>
where
    DB: Database,
    String: Binds<DB>,
    Option<String>: Binds<DB>,
    i64: Binds<DB>,
{
    let mut sql = QueryBuilder::new("");
    push_event_head(&mut sql, event);
    sql.push_bind(namespace.key());
    push_event_tail(&mut sql, event, "");
    sql
}

/// Appends [`insert_event`] for a job event to `sql`, in the namespace of the job
/// (`event.job`) as its row says, only where `condition` (SQL, `AND …`; may be empty) holds:
/// for a backend that writes it in the same statement as the job's finish. `id_cast` turns
/// the bound text into the type of `jobs.id` (PostgreSQL: `::uuid`).
pub fn push_job_event<DB>(sql: &mut QueryBuilder<DB>, event: &Event, id_cast: &str, condition: &str)
where
    DB: Database,
    String: Binds<DB>,
    Option<String>: Binds<DB>,
    i64: Binds<DB>,
{
    push_event_head(sql, event);
    sql.push("(SELECT environment FROM jobs WHERE id = ")
        .push_bind(event.job.map(|j| j.to_string()).unwrap_or_default())
        .push(id_cast)
        .push(")");
    push_event_tail(sql, event, condition);
}

fn push_event_head<DB>(sql: &mut QueryBuilder<DB>, event: &Event)
where
    DB: Database,
    String: Binds<DB>,
    Option<String>: Binds<DB>,
    i64: Binds<DB>,
{
    sql.push(
        "INSERT INTO webhook_deliveries (environment, webhook_id, event_id, type, job_id, data, \
         created_at, dispatch_at, state) SELECT environment, webhook_id, ",
    );
    let mut values = sql.separated(", ");
    values.push_bind(event.id.clone());
    values.push_bind(event.kind.as_str().to_owned());
    values.push_bind(event.job.map(|j| j.to_string()));
    values.push_bind(event.data.clone());
    values.push_bind(event.at.0);
    values.push_bind(event.at.0);
    sql.push(", 'pending' FROM webhooks WHERE environment = ");
}

fn push_event_tail<DB>(sql: &mut QueryBuilder<DB>, event: &Event, condition: &str)
where
    DB: Database,
    String: Binds<DB>,
{
    sql.push(" AND disabled_at IS NULL AND events LIKE ")
        .push_bind(format!("%,{},%", event.kind.as_str()))
        .push(condition)
        .push(" ON CONFLICT (environment, webhook_id, event_id) DO NOTHING");
}

/// `SELECT *` of one endpoint.
pub fn select_webhook<DB>(namespace: &Namespace, id: &WebhookId) -> QueryBuilder<DB>
where
    DB: Database,
    String: Binds<DB>,
{
    let mut sql = QueryBuilder::new("SELECT * FROM webhooks WHERE environment = ");
    sql.push_bind(namespace.key())
        .push(" AND webhook_id = ")
        .push_bind(id.as_str().to_owned());
    sql
}

/// `SELECT *` of a namespace's endpoints, by id.
pub fn list_webhooks<DB>(namespace: &Namespace) -> QueryBuilder<DB>
where
    DB: Database,
    String: Binds<DB>,
    i64: Binds<DB>,
{
    let mut sql = QueryBuilder::new("SELECT * FROM webhooks WHERE environment = ");
    sql.push_bind(namespace.key())
        .push(" ORDER BY webhook_id LIMIT ")
        .push_bind(MAX_WEBHOOKS_LISTED);
    sql
}

/// The stored form of an endpoint's events: `,a,b,` (what [`insert_event`] matches).
pub fn events_column(record: &WebhookRecord) -> String {
    let mut s = String::from(",");
    for e in &record.events {
        s.push_str(e.as_str());
        s.push(',');
    }
    s
}

/// Inserts a new endpoint.
pub fn insert_webhook<DB>(record: &WebhookRecord) -> QueryBuilder<DB>
where
    DB: Database,
    String: Binds<DB>,
    i64: Binds<DB>,
{
    let mut sql = QueryBuilder::new(
        "INSERT INTO webhooks (environment, webhook_id, url, events, secret, created_at, \
         updated_at) VALUES (",
    );
    let mut values = sql.separated(", ");
    values.push_bind(record.namespace.key());
    values.push_bind(record.id.as_str().to_owned());
    values.push_bind(record.url.clone());
    values.push_bind(events_column(record));
    values.push_bind(record.secret.expose().to_owned());
    values.push_bind(record.created_at.0);
    values.push_bind(record.updated_at.0);
    sql.push(")");
    sql
}

/// Replaces an endpoint's URL, events and secret, enabling it again.
pub fn update_webhook<DB>(record: &WebhookRecord) -> QueryBuilder<DB>
where
    DB: Database,
    String: Binds<DB>,
    i64: Binds<DB>,
{
    let mut sql = QueryBuilder::new("UPDATE webhooks SET url = ");
    sql.push_bind(record.url.clone())
        .push(", events = ")
        .push_bind(events_column(record))
        .push(", secret = ")
        .push_bind(record.secret.expose().to_owned())
        .push(", updated_at = ")
        .push_bind(record.updated_at.0)
        .push(", disabled_at = NULL WHERE environment = ")
        .push_bind(record.namespace.key())
        .push(" AND webhook_id = ")
        .push_bind(record.id.as_str().to_owned());
    sql
}

/// Deletes an endpoint's rows from `table` (`webhook_attempts`, `webhook_deliveries`,
/// `webhooks`: in that order, in one transaction).
pub fn delete_webhook_rows<DB>(
    table: &'static str,
    namespace: &Namespace,
    id: &WebhookId,
) -> QueryBuilder<DB>
where
    DB: Database,
    String: Binds<DB>,
{
    let mut sql = QueryBuilder::new(format!("DELETE FROM {table} WHERE environment = "));
    sql.push_bind(namespace.key())
        .push(" AND webhook_id = ")
        .push_bind(id.as_str().to_owned());
    sql
}

/// Marks an endpoint disabled.
pub fn disable_webhook<DB>(
    namespace: &Namespace,
    id: &WebhookId,
    now: Timestamp,
) -> QueryBuilder<DB>
where
    DB: Database,
    String: Binds<DB>,
    i64: Binds<DB>,
{
    let mut sql = QueryBuilder::new("UPDATE webhooks SET disabled_at = ");
    sql.push_bind(now.0)
        .push(" WHERE environment = ")
        .push_bind(namespace.key())
        .push(" AND webhook_id = ")
        .push_bind(id.as_str().to_owned());
    sql
}

/// Claims deliveries due for dispatch, returning their `id`s. The outer condition is
/// checked again on each row as it is updated, so two dispatchers never both claim one.
pub fn claim_dispatch<DB>(now: Timestamp, retry_at: Timestamp, limit: u32) -> QueryBuilder<DB>
where
    DB: Database,
    i64: Binds<DB>,
{
    let mut sql = QueryBuilder::new("UPDATE webhook_deliveries SET dispatch_at = ");
    sql.push_bind(retry_at.0)
        .push(" WHERE dispatch_at <= ")
        .push_bind(now.0)
        .push(
            " AND id IN (SELECT id FROM webhook_deliveries WHERE dispatch_at IS NOT NULL \
             AND dispatch_at <= ",
        )
        .push_bind(now.0)
        .push(" ORDER BY dispatch_at LIMIT ")
        .push_bind(i64::from(limit))
        .push(") RETURNING id");
    sql
}

/// Marks deliveries dispatched (their messages are in the queue).
pub fn mark_dispatched<DB>(ids: &[i64]) -> QueryBuilder<DB>
where
    DB: Database,
    i64: Binds<DB>,
{
    let mut sql =
        QueryBuilder::new("UPDATE webhook_deliveries SET dispatch_at = NULL WHERE id IN (");
    let mut list = sql.separated(", ");
    for &id in ids {
        list.push_bind(id);
    }
    sql.push(")");
    sql
}

/// `SELECT *` of one delivery.
pub fn select_delivery<DB>(id: i64) -> QueryBuilder<DB>
where
    DB: Database,
    i64: Binds<DB>,
{
    let mut sql = QueryBuilder::new("SELECT * FROM webhook_deliveries WHERE id = ");
    sql.push_bind(id);
    sql
}

/// Inserts an attempt (run with [`update_delivery`] in one transaction).
pub fn insert_attempt<DB>(attempt: &AttemptRecord) -> QueryBuilder<DB>
where
    DB: Database,
    String: Binds<DB>,
    Option<String>: Binds<DB>,
    i64: Binds<DB>,
    Option<i64>: Binds<DB>,
{
    let mut sql = QueryBuilder::new(
        "INSERT INTO webhook_attempts (delivery_id, environment, webhook_id, event_id, type, \
         attempt, at, status, error, duration_ms, next_retry_at) VALUES (",
    );
    let mut values = sql.separated(", ");
    values.push_bind(attempt.delivery_id);
    values.push_bind(attempt.namespace.key());
    values.push_bind(attempt.webhook_id.as_str().to_owned());
    values.push_bind(attempt.event_id.clone());
    values.push_bind(attempt.kind.as_str().to_owned());
    values.push_bind(i64::from(attempt.attempt));
    values.push_bind(attempt.at.0);
    values.push_bind(attempt.status.map(i64::from));
    values.push_bind(attempt.error.clone());
    values.push_bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX));
    values.push_bind(attempt.next_retry_at.map(|t| t.0));
    sql.push(")");
    sql
}

/// A delivery's state after `attempt`.
pub fn update_delivery<DB>(attempt: &AttemptRecord, state: DeliveryState) -> QueryBuilder<DB>
where
    DB: Database,
    String: Binds<DB>,
    i64: Binds<DB>,
    Option<i64>: Binds<DB>,
{
    let mut sql = QueryBuilder::new("UPDATE webhook_deliveries SET attempts = ");
    sql.push_bind(i64::from(attempt.attempt))
        .push(", state = ")
        .push_bind(state.as_str().to_owned())
        .push(", next_attempt_at = ")
        .push_bind(attempt.next_retry_at.map(|t| t.0))
        .push(" WHERE id = ")
        .push_bind(attempt.delivery_id);
    sql
}

/// `SELECT *` of an endpoint's latest attempts, newest first.
pub fn list_attempts<DB>(namespace: &Namespace, id: &WebhookId, limit: u32) -> QueryBuilder<DB>
where
    DB: Database,
    String: Binds<DB>,
    i64: Binds<DB>,
{
    let mut sql = QueryBuilder::new("SELECT * FROM webhook_attempts WHERE environment = ");
    sql.push_bind(namespace.key())
        .push(" AND webhook_id = ")
        .push_bind(id.as_str().to_owned())
        .push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(limit));
    sql
}

/// `SELECT COUNT(*) AS n` of pending deliveries.
pub fn count_pending<DB: Database>() -> QueryBuilder<DB> {
    QueryBuilder::new("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE state = 'pending'")
}

/// Purges finished deliveries created before `before`, from `table` (`webhook_attempts`,
/// then `webhook_deliveries`).
pub fn purge<DB>(table: &'static str, before: Timestamp) -> QueryBuilder<DB>
where
    DB: Database,
    i64: Binds<DB>,
{
    let finished = "SELECT id FROM webhook_deliveries WHERE state <> 'pending' AND created_at < ";
    let mut sql = QueryBuilder::new(match table {
        "webhook_attempts" => {
            format!("DELETE FROM webhook_attempts WHERE delivery_id IN ({finished}")
        }
        _ => format!("DELETE FROM webhook_deliveries WHERE id IN ({finished}"),
    });
    sql.push_bind(before.0).push(")");
    sql
}
