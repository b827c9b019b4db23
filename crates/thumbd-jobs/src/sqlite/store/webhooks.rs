//! Webhook endpoints and deliveries in SQLite (the SQL is `webhooks::sql`'s, shared with
//! PostgreSQL).

use async_trait::async_trait;
use sqlx::Connection as _;
use sqlx::Row as _;

use super::SqliteMetaStore;
use crate::error::Result;
use crate::ids::Namespace;
use crate::timestamp::Timestamp;
use crate::webhooks::{
    AttemptRecord, DeliveryRecord, DeliveryState, Event, NewWebhook, WebhookId, WebhookPut,
    WebhookRecord, WebhookStore, attempt_from_row, delivery_from_row, sql, webhook_from_row,
};

/// In the transaction `tx` that makes the change `event` announces: its deliveries.
pub(super) async fn write_event(
    tx: &mut sqlx::SqliteConnection,
    namespace: &Namespace,
    event: &Event,
) -> Result<()> {
    sql::insert_event(namespace, event)
        .build()
        .execute(tx)
        .await?;
    Ok(())
}

#[async_trait]
impl WebhookStore for SqliteMetaStore {
    async fn put_webhook(&self, webhook: &NewWebhook) -> Result<WebhookPut> {
        let mut conn = self.db.write().await?;
        let mut tx = conn.begin().await?;
        let existing = sql::select_webhook(&webhook.namespace, &webhook.id)
            .build()
            .fetch_optional(&mut *tx)
            .await?
            .as_ref()
            .map(webhook_from_row)
            .transpose()?;
        let put = webhook.apply_to(existing);
        let mut statement = match &put {
            WebhookPut::Created(r) => sql::insert_webhook(r),
            WebhookPut::Replaced(r) => sql::update_webhook(r),
        };
        statement.build().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(put)
    }

    async fn webhook(
        &self,
        namespace: &Namespace,
        id: &WebhookId,
    ) -> Result<Option<WebhookRecord>> {
        sql::select_webhook(namespace, id)
            .build()
            .fetch_optional(&mut *self.db.read().await?)
            .await?
            .as_ref()
            .map(webhook_from_row)
            .transpose()
    }

    async fn list_webhooks(&self, namespace: &Namespace) -> Result<Vec<WebhookRecord>> {
        sql::list_webhooks(namespace)
            .build()
            .fetch_all(&mut *self.db.read().await?)
            .await?
            .iter()
            .map(webhook_from_row)
            .collect()
    }

    async fn delete_webhook(&self, namespace: &Namespace, id: &WebhookId) -> Result<bool> {
        let mut conn = self.db.write().await?;
        let mut tx = conn.begin().await?;
        let mut deleted = 0;
        for table in ["webhook_attempts", "webhook_deliveries", "webhooks"] {
            deleted = sql::delete_webhook_rows(table, namespace, id)
                .build()
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted == 1)
    }

    async fn disable_webhook(
        &self,
        namespace: &Namespace,
        id: &WebhookId,
        now: Timestamp,
    ) -> Result<()> {
        sql::disable_webhook(namespace, id, now)
            .build()
            .execute(&mut *self.db.write().await?)
            .await?;
        Ok(())
    }

    async fn claim_dispatch(
        &self,
        now: Timestamp,
        retry_at: Timestamp,
        limit: u32,
    ) -> Result<Vec<i64>> {
        // A reader first: the dispatcher looks after every finished job, and the one writer
        // is the jobs' too.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM webhook_deliveries WHERE dispatch_at IS NOT NULL AND dispatch_at <= ? \
             LIMIT 1",
        )
        .bind(now.0)
        .fetch_optional(&mut *self.db.read().await?)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        sql::claim_dispatch(now, retry_at, limit)
            .build()
            .fetch_all(&mut *self.db.write().await?)
            .await?
            .iter()
            .map(|row| Ok(row.try_get("id")?))
            .collect()
    }

    async fn mark_dispatched(&self, ids: &[i64]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        sql::mark_dispatched(ids)
            .build()
            .execute(&mut *self.db.write().await?)
            .await?;
        Ok(())
    }

    async fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>> {
        // A reader sees every commit made before its statement, the row's included: its
        // message is pushed only after the row is committed.
        sql::select_delivery(id)
            .build()
            .fetch_optional(&mut *self.db.read().await?)
            .await?
            .as_ref()
            .map(delivery_from_row)
            .transpose()
    }

    async fn record_attempt(&self, attempt: &AttemptRecord, state: DeliveryState) -> Result<()> {
        let mut conn = self.db.write().await?;
        let mut tx = conn.begin().await?;
        sql::insert_attempt(attempt)
            .build()
            .execute(&mut *tx)
            .await?;
        sql::update_delivery(attempt, state)
            .build()
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_attempts(
        &self,
        namespace: &Namespace,
        id: &WebhookId,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>> {
        sql::list_attempts(namespace, id, limit)
            .build()
            .fetch_all(&mut *self.db.read().await?)
            .await?
            .iter()
            .map(attempt_from_row)
            .collect()
    }

    async fn pending_deliveries(&self) -> Result<u64> {
        let row = sql::count_pending()
            .build()
            .fetch_one(&mut *self.db.read().await?)
            .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }

    async fn purge_deliveries(&self, before: Timestamp) -> Result<u64> {
        let mut conn = self.db.write().await?;
        let mut tx = conn.begin().await?;
        sql::purge("webhook_attempts", before)
            .build()
            .execute(&mut *tx)
            .await?;
        let purged = sql::purge("webhook_deliveries", before)
            .build()
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(purged)
    }
}
