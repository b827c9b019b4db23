//! The webhook tables' rows, decoded once for every SQL backend (the column types are the
//! same: text and 64-bit integers).

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{
    AttemptRecord, DeliveryRecord, DeliveryState, EventType, WebhookId, WebhookRecord,
    WebhookSecret,
};
use crate::error::{Error, Result};
use crate::ids::{JobId, Namespace};
use crate::timestamp::Timestamp;

fn damaged(what: &'static str) -> impl Fn(Error) -> Error {
    move |e| Error::Damaged(format!("{what} row: {e}"))
}

/// A `webhooks` row.
pub fn webhook_from_row<'r, R>(row: &'r R) -> Result<WebhookRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let d = damaged("webhook");
    let events = row
        .try_get::<&str, _>("events")?
        .split(',')
        .filter(|e| !e.is_empty())
        .map(EventType::parse)
        .collect::<Result<Vec<_>>>()
        .map_err(&d)?;
    Ok(WebhookRecord {
        namespace: Namespace::from_key(row.try_get("environment")?).map_err(&d)?,
        id: WebhookId::parse(row.try_get("webhook_id")?).map_err(&d)?,
        url: row.try_get::<&str, _>("url")?.to_owned(),
        events,
        secret: WebhookSecret::parse(row.try_get("secret")?).map_err(&d)?,
        created_at: Timestamp(row.try_get("created_at")?),
        updated_at: Timestamp(row.try_get("updated_at")?),
        disabled_at: row.try_get::<Option<i64>, _>("disabled_at")?.map(Timestamp),
    })
}

/// A `webhook_deliveries` row.
pub fn delivery_from_row<'r, R>(row: &'r R) -> Result<DeliveryRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let d = damaged("delivery");
    Ok(DeliveryRecord {
        id: row.try_get("id")?,
        namespace: Namespace::from_key(row.try_get("environment")?).map_err(&d)?,
        webhook_id: WebhookId::parse(row.try_get("webhook_id")?).map_err(&d)?,
        event_id: row.try_get::<&str, _>("event_id")?.to_owned(),
        kind: EventType::parse(row.try_get("type")?).map_err(&d)?,
        job: row
            .try_get::<Option<&str>, _>("job_id")?
            .map(JobId::parse)
            .transpose()
            .map_err(&d)?,
        data: row.try_get::<Option<&str>, _>("data")?.map(str::to_owned),
        created_at: Timestamp(row.try_get("created_at")?),
        state: DeliveryState::parse(row.try_get("state")?)?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
    })
}

/// A `webhook_attempts` row.
pub fn attempt_from_row<'r, R>(row: &'r R) -> Result<AttemptRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let d = damaged("attempt");
    Ok(AttemptRecord {
        delivery_id: row.try_get("delivery_id")?,
        namespace: Namespace::from_key(row.try_get("environment")?).map_err(&d)?,
        webhook_id: WebhookId::parse(row.try_get("webhook_id")?).map_err(&d)?,
        event_id: row.try_get::<&str, _>("event_id")?.to_owned(),
        kind: EventType::parse(row.try_get("type")?).map_err(&d)?,
        attempt: u32::try_from(row.try_get::<i64, _>("attempt")?).unwrap_or(u32::MAX),
        at: Timestamp(row.try_get("at")?),
        status: row
            .try_get::<Option<i64>, _>("status")?
            .and_then(|s| u16::try_from(s).ok()),
        error: row.try_get::<Option<&str>, _>("error")?.map(str::to_owned),
        duration_ms: u64::try_from(row.try_get::<i64, _>("duration_ms")?).unwrap_or(0),
        next_retry_at: row
            .try_get::<Option<i64>, _>("next_retry_at")?
            .map(Timestamp),
    })
}
