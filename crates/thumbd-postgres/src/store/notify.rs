//! Finished jobs announced with PostgreSQL `NOTIFY`, relayed into an API process's
//! [`JobEvents`](thumbd_jobs::JobEvents) so a waiting request wakes on the commit.

use thumbd_jobs::JobId;

use super::PgMetaStore;

/// The `NOTIFY` channel on which finished jobs are announced by id (on commit).
pub const FINISHED_CHANNEL: &str = "thumbd_jobs_finished";

impl PgMetaStore {
    /// Forwards the jobs finished by any process (announced with `NOTIFY` on
    /// [`FINISHED_CHANNEL`]) to `events`, so an API process answers a waiting request the
    /// moment a remote worker finishes its job. Runs until the store's pool closes; a
    /// dropped connection is re-established (announcements in the gap are missed: waiting
    /// requests also poll).
    pub fn forward_finished(&self, events: thumbd_jobs::JobEvents) -> tokio::task::JoinHandle<()> {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut listener = loop {
                match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(mut l) => match l.listen(FINISHED_CHANNEL).await {
                        Ok(()) => break l,
                        Err(e) => tracing::warn!(error = %e, "cannot LISTEN for finished jobs"),
                    },
                    Err(e) if pool.is_closed() => {
                        tracing::debug!(error = %e, "store closed");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot LISTEN for finished jobs"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            };
            loop {
                match listener.recv().await {
                    Ok(n) => match JobId::parse(n.payload()) {
                        Ok(id) => events.finished(id),
                        Err(e) => tracing::warn!(error = %e, "an announcement not understood"),
                    },
                    Err(_) if pool.is_closed() => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "finished-job notifications interrupted");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        })
    }
}
