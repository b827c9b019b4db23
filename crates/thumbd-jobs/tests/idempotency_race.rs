//! Concurrent creates with one `Idempotency-Key` on the embedded store: tasks of one process
//! sharing one [`SqliteMetaStore`], as the API's request handlers do.

use std::time::Duration;
use thumbd_jobs::AssociationStore as _;
use thumbd_jobs::JobStore as _;

use thumbd_jobs::{
    Claim, Environment, IdempotencyKey, JobId, JobMessage, JobRecord, JobSource, SqliteDb,
    SqliteMetaStore, ThumbnailId, Timestamp,
};

const TASKS: usize = 8;

fn queued(now: Timestamp) -> JobRecord {
    let message = JobMessage {
        tenant: thumbd_jobs::Tenant::default(),
        job_id: None,
        environment: Environment::Production,
        thumbnail_id: ThumbnailId::parse("idem").unwrap(),
        source: JobSource::Url {
            url: "https://example.invalid/a.png".into(),
        },
        reply_to: None,
        profile: None,
    };
    JobRecord::queued(JobId::new(), &message, now)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_idempotent_creates_create_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(&dir.path().join("thumbd.db")).await.unwrap();
    let store = SqliteMetaStore::new(db);
    let now = Timestamp::now();
    let fresh = now.minus(Duration::from_secs(24 * 3600));
    for round in 0..20 {
        let key = IdempotencyKey {
            tenant: thumbd_jobs::Tenant::default(),
            client: "client".into(),
            environment: Environment::Production,
            key: format!("key-{round}"),
        };
        // Odd rounds: a stale entry that every task wants to replace.
        if round % 2 == 1 {
            let old = queued(fresh.minus(Duration::from_secs(1)));
            let claim =
                store.create_job_idempotent(&old, &key, fresh.minus(Duration::from_secs(2)));
            assert_eq!(claim.await.unwrap(), Claim::Created);
        }
        let jobs: Vec<JobRecord> = (0..TASKS).map(|_| queued(now)).collect();
        let tasks: Vec<_> = jobs
            .iter()
            .map(|job| {
                let (store, job, key) = (store.clone(), job.clone(), key.clone());
                tokio::spawn(async move { store.create_job_idempotent(&job, &key, fresh).await })
            })
            .collect();
        let mut claims = Vec::new();
        for task in tasks {
            claims.push(task.await.unwrap().unwrap());
        }
        let created: Vec<&JobRecord> = jobs
            .iter()
            .zip(&claims)
            .filter(|(_, claim)| **claim == Claim::Created)
            .map(|(job, _)| job)
            .collect();
        assert_eq!(created.len(), 1, "round {round}: {claims:?}");
        let winner = created[0].id;
        for (job, claim) in jobs.iter().zip(&claims) {
            if job.id != winner {
                assert_eq!(*claim, Claim::Existing(winner), "round {round}");
                assert_eq!(store.job(job.id).await.unwrap(), None, "round {round}");
            }
        }
        assert!(store.job(winner).await.unwrap().is_some());
        assert_eq!(
            store.idempotent_job(&key, fresh).await.unwrap(),
            Some(winner)
        );
    }
}
