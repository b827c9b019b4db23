//! What the store keeps besides jobs and thumbnails: contexts that reference thumbnails
//! (ClassKit), upload tickets (Decathlon / Safe Creative) and idempotency keys.

use crate::ids::{
    BlobKey, ContextId, Environment, JobId, Namespace, Tenant, ThumbnailId, UploadTicket,
};
use crate::job::ThumbnailRecord;
use crate::timestamp::Timestamp;

/// A context: a client object that references at most one thumbnail (README: The HTTP API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextRecord {
    /// Whose context.
    pub tenant: Tenant,
    /// The tenant's environment.
    pub environment: Environment,
    /// The client's id for it.
    pub context_id: ContextId,
    /// The thumbnail it references.
    pub thumbnail_id: ThumbnailId,
    /// The JSON object the client sent, as text (kept as written).
    pub body: String,
    /// When it was first created (kept across replacements).
    pub created_at: Timestamp,
    /// When it was last written.
    pub updated_at: Timestamp,
}

impl ContextRecord {
    /// Its namespace.
    pub fn namespace(&self) -> Namespace {
        Namespace::new(self.tenant.clone(), self.environment)
    }
}

impl IdempotencyKey {
    /// The namespace of the create.
    pub fn namespace(&self) -> Namespace {
        Namespace::new(self.tenant.clone(), self.environment)
    }
}

/// What [`AssociationStore::put_context`](crate::AssociationStore::put_context) or
/// [`delete_context`](crate::AssociationStore::delete_context) changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContextChange {
    /// The context before the change; `None` when a put created it.
    pub previous: Option<ContextRecord>,
    /// The thumbnail removed because the change took away the last context referencing it.
    /// Its blob is its own: the caller deletes `result.blob_keys()` (every rendition).
    pub deleted_thumbnail: Option<ThumbnailRecord>,
}

/// A stored upload: the original bytes live in the blob store until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// The ticket that names it.
    pub ticket: UploadTicket,
    /// Who uploaded it: only creates of that tenant may use it.
    pub tenant: Tenant,
    /// The environment it was uploaded for, if one was named: only creates in it may use
    /// it. `None`: either environment of the tenant.
    pub environment: Option<Environment>,
    /// Where the bytes are ([`BlobKey::upload`]).
    pub blob_key: BlobKey,
    /// The media type the bytes were checked against (`image/png`, `image/jpeg`, or an
    /// accepted `image/webp`, `image/gif`).
    pub content_type: String,
    /// Size of the bytes.
    pub bytes: u64,
    /// When it was stored.
    pub created_at: Timestamp,
    /// After this the ticket is unknown and the bytes are deleted.
    pub expires_at: Timestamp,
}

/// An `Idempotency-Key` as scoped by the API: per client and environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    /// Who sent it (the token's subject, else the peer address).
    pub client: String,
    /// The tenant of the create.
    pub tenant: Tenant,
    /// The environment of the create.
    pub environment: Environment,
    /// The header's value (1–255 bytes).
    pub key: String,
}

/// What [`AssociationStore::create_job_idempotent`](crate::AssociationStore::create_job_idempotent) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The key was free (or stale): the job was created and the key now names it.
    Created,
    /// The key already names this job (created after `fresh_after`): nothing was created.
    Existing(JobId),
}
