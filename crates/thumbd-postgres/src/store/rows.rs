//! Rows back to records: the columns `job_columns!` and `thumbnail_columns!` select (uuid and
//! json as text, client strings as bytea), validated like any input.

use sqlx::Row as _;
use sqlx::postgres::PgRow;
use thumbd_jobs::{
    Error, JobFailure, JobId, JobRecord, JobResult, JobSource, JobStatus, Namespace, Result,
    ThumbnailId, ThumbnailRecord, Timestamp,
};

/// A client's string stored as bytea, back to text.
pub(super) fn utf8(bytes: Vec<u8>, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Error::Damaged(format!("{what} is not UTF-8")))
}

/// A job's columns as a read returns them (see `job_columns!`).
struct JobColumns {
    id: String,
    environment: String,
    thumbnail_id: Vec<u8>,
    status: String,
    source: JobSource,
    reply_to: Option<Vec<u8>>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    attempts: i32,
    result: Option<JobResult>,
    error_code: Option<String>,
    error_message: Option<String>,
    profile: Option<String>,
}

impl JobColumns {
    fn from_row(row: &PgRow) -> Result<Self> {
        let result: Option<&str> = row.try_get("result")?;
        Ok(JobColumns {
            id: row.try_get("id")?,
            environment: row.try_get("environment")?,
            thumbnail_id: row.try_get("thumbnail_id")?,
            status: row.try_get("status")?,
            source: serde_json::from_str(row.try_get("source")?)?,
            reply_to: row.try_get("reply_to")?,
            created_at: row.try_get("created_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
            attempts: row.try_get("attempts")?,
            result: result.map(serde_json::from_str).transpose()?,
            error_code: row.try_get("error_code")?,
            error_message: row.try_get("error_message")?,
            profile: row.try_get("profile")?,
        })
    }

    fn into_record(self) -> Result<JobRecord> {
        let damaged = |e: Error| Error::Damaged(format!("job row: {e}"));
        let thumbnail_id = utf8(self.thumbnail_id, "jobs.thumbnail_id")?;
        let namespace = Namespace::from_key(&self.environment).map_err(damaged)?;
        Ok(JobRecord {
            id: JobId::parse(&self.id).map_err(damaged)?,
            tenant: namespace.tenant,
            environment: namespace.environment,
            thumbnail_id: ThumbnailId::parse(&thumbnail_id).map_err(damaged)?,
            status: JobStatus::parse(&self.status)?,
            source: self.source,
            reply_to: self
                .reply_to
                .map(|r| utf8(r, "jobs.reply_to"))
                .transpose()?,
            profile: self.profile,
            created_at: Timestamp(self.created_at),
            started_at: self.started_at.map(Timestamp),
            finished_at: self.finished_at.map(Timestamp),
            attempts: u32::try_from(self.attempts).unwrap_or_default(),
            result: self.result,
            error: match self.error_code {
                Some(code) => Some(JobFailure {
                    code: code
                        .parse()
                        .map_err(|e| Error::Damaged(format!("job row: {e}")))?,
                    message: self.error_message.unwrap_or_default(),
                }),
                None => None,
            },
        })
    }
}

pub(super) fn job_from_row(row: &PgRow) -> Result<JobRecord> {
    JobColumns::from_row(row)?.into_record()
}

pub(super) fn thumbnail_from_row(row: &PgRow) -> Result<ThumbnailRecord> {
    let damaged = |e: Error| Error::Damaged(format!("thumbnail row: {e}"));
    let thumbnail_id = utf8(row.try_get("thumbnail_id")?, "thumbnails.thumbnail_id")?;
    let namespace = Namespace::from_key(row.try_get("environment")?).map_err(damaged)?;
    Ok(ThumbnailRecord {
        tenant: namespace.tenant,
        environment: namespace.environment,
        thumbnail_id: ThumbnailId::parse(&thumbnail_id).map_err(damaged)?,
        job_id: JobId::parse(row.try_get("job_id")?).map_err(damaged)?,
        job_created_at: Timestamp(row.try_get("job_created_at")?),
        result: serde_json::from_str(row.try_get("result")?)?,
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}
