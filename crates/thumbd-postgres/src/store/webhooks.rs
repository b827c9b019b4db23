//! Webhook endpoints and deliveries in PostgreSQL (the SQL is `thumbd_jobs::webhooks::sql`'s,
//! shared with SQLite).

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::PgConnection;
use thumbd_jobs::webhooks::{attempt_from_row, delivery_from_row, sql, webhook_from_row};
use thumbd_jobs::{
    AttemptRecord, DeliveryRecord, DeliveryState, Event, Namespace, NewWebhook, Result, Timestamp,
    WebhookId, WebhookPut, WebhookRecord, WebhookStore,
};

use super::PgMetaStore;

/// In the transaction `tx` that makes the change `event` announces: its deliveries.
pub(super) async fn write_event(
    tx: &mut PgConnection,
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
impl WebhookStore for PgMetaStore {
    async fn put_webhook(&self, webhook: &NewWebhook) -> Result<WebhookPut> {
        let mut tx = self.pool.begin().await?;
        // Locks the row if it exists; two first PUTs at once: one inserts, the other's insert
        // fails on the key and the client retries.
        let mut select = sql::select_webhook(&webhook.namespace, &webhook.id);
        select.push(" FOR UPDATE");
        let existing = select
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
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(webhook_from_row)
            .transpose()
    }

    async fn list_webhooks(&self, namespace: &Namespace) -> Result<Vec<WebhookRecord>> {
        sql::list_webhooks(namespace)
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(webhook_from_row)
            .collect()
    }

    async fn delete_webhook(&self, namespace: &Namespace, id: &WebhookId) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
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
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim_dispatch(
        &self,
        now: Timestamp,
        retry_at: Timestamp,
        limit: u32,
    ) -> Result<Vec<i64>> {
        sql::claim_dispatch(now, retry_at, limit)
            .build()
            .fetch_all(&self.pool)
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
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>> {
        sql::select_delivery(id)
            .build()
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(delivery_from_row)
            .transpose()
    }

    async fn record_attempt(&self, attempt: &AttemptRecord, state: DeliveryState) -> Result<()> {
        let mut tx = self.pool.begin().await?;
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
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(attempt_from_row)
            .collect()
    }

    async fn pending_deliveries(&self) -> Result<u64> {
        let row = sql::count_pending().build().fetch_one(&self.pool).await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }

    async fn purge_deliveries(&self, before: Timestamp) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
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
