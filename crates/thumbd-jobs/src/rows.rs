//! Row decoding that every SQL backend shares: where SQLite and PostgreSQL store a record in
//! the same column types, it is decoded here once, generically over sqlx's [`Row`].

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::associations::UploadRecord;
use crate::error::{Error, Result};
use crate::ids::{BlobKey, Environment, Tenant, UploadTicket};
use crate::timestamp::Timestamp;

/// An `uploads` row (every column of it) as an [`UploadRecord`].
pub fn upload_from_row<'r, R>(row: &'r R) -> Result<UploadRecord>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let damaged = |e: Error| Error::Damaged(format!("upload row: {e}"));
    Ok(UploadRecord {
        ticket: UploadTicket::parse(row.try_get("ticket")?).map_err(damaged)?,
        tenant: Tenant::parse(row.try_get("tenant")?).map_err(damaged)?,
        environment: row
            .try_get::<Option<&str>, _>("environment")?
            .map(Environment::parse)
            .transpose()
            .map_err(damaged)?,
        blob_key: BlobKey::parse(row.try_get("blob_key")?).map_err(damaged)?,
        content_type: row.try_get("content_type")?,
        bytes: u64::try_from(row.try_get::<i64, _>("bytes")?)
            .map_err(|_| Error::Damaged("upload row: negative size".into()))?,
        created_at: Timestamp(row.try_get("created_at")?),
        expires_at: Timestamp(row.try_get("expires_at")?),
    })
}
