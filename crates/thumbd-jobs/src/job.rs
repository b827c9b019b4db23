//! The job model: what a queue carries ([`JobMessage`]) and what the store keeps
//! ([`JobRecord`], [`ThumbnailRecord`]).

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use thumbd_codes::Code;

use crate::error::{Error, Result};
use crate::ids::{BlobKey, Environment, JobId, Namespace, Tenant, ThumbnailId};
use crate::timestamp::Timestamp;

/// Where a job's image comes from (the queue message's `source`, README, Distributed mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JobSource {
    /// An original already in the blob store (the API's claim check).
    Blob {
        /// Its key.
        #[serde(rename = "blobKey")]
        blob_key: BlobKey,
    },
    /// A URL the worker downloads.
    Url {
        /// `http://` or `https://` address.
        url: String,
    },
    /// The image itself, base64-encoded (queue producers; at most 5 MiB decoded).
    Inline {
        /// Standard base64 of the image bytes.
        inline: String,
        /// The declared media type (`image/png`, `image/jpeg`; `image/webp`, `image/gif` where
        /// `accept_formats` has them).
        #[serde(rename = "contentType")]
        content_type: String,
    },
}

impl JobSource {
    /// Decodes an [`Inline`](JobSource::Inline) payload; `None` for other sources.
    pub fn inline_bytes(&self) -> Option<Result<Vec<u8>>> {
        match self {
            JobSource::Inline { inline, .. } => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(inline)
                    .map_err(|e| Error::invalid("source.inline", e.to_string())),
            ),
            _ => None,
        }
    }
}

/// The public, versioned queue message (README, Distributed mode; routing key `jobs.v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMessage {
    /// The job's id; producers may leave it out and thumbd derives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// Whose job (README, "Tenants"); `default` when a producer names none.
    #[serde(default, skip_serializing_if = "Tenant::is_default")]
    pub tenant: Tenant,
    /// The tenant's environment.
    pub environment: Environment,
    /// The thumbnail to create or replace.
    pub thumbnail_id: ThumbnailId,
    /// Where the image is.
    pub source: JobSource,
    /// Routing key to publish the final status body to (RabbitMQ mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// The profile whose renditions to make; none: the worker's default profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl JobMessage {
    /// Parses a message body; anything malformed is [`Error::Invalid`] with the reason.
    pub fn parse(body: &[u8]) -> Result<Self> {
        serde_json::from_slice(body).map_err(|e| Error::invalid("message", e.to_string()))
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a JobMessage always serialises")
    }
}

/// Where a job is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Accepted, waiting for a worker.
    Queued,
    /// A worker has it.
    Processing,
    /// Finished; the thumbnail is stored.
    Succeeded,
    /// Finished with an error code.
    Failed,
}

impl JobStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Processing => "processing",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "queued" => JobStatus::Queued,
            "processing" => JobStatus::Processing,
            "succeeded" => JobStatus::Succeeded,
            "failed" => JobStatus::Failed,
            _ => return Err(Error::Damaged(format!("unknown job status {s:?}"))),
        })
    }

    /// Succeeded or failed: nothing will change it any more.
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// What a succeeded job produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobResult {
    /// Thumbnail width.
    pub width: u32,
    /// Thumbnail height.
    pub height: u32,
    /// Encoded size.
    pub bytes: u64,
    /// `image/png`, `image/jpeg` or `image/webp`.
    pub content_type: String,
    /// Strong entity tag: the SHA-256 of the bytes, hex.
    pub etag: String,
    /// Where the bytes are.
    pub blob_key: BlobKey,
    /// What the size budget did (`fits`, `recompressed`, `quantized`, …).
    pub budget: String,
    /// The input had more than one frame (an animated GIF or WebP); the thumbnail is of the
    /// first. Absent from the stored JSON when false, so results stored before the field
    /// existed read as not animated.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub animated: bool,
    /// What to paint while the thumbnail loads; absent from results stored before it was
    /// computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<Placeholder>,
    /// The profile the set was made for; absent from results stored before profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The probed input; absent from results stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceInfo>,
    /// Every rendition of the set, in the profile's order; the fields above describe the
    /// main one (the rendition served without `size` or `format`), which is also listed
    /// here. Empty in results stored before renditions: the fields above are then the
    /// only one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renditions: Vec<RenditionResult>,
}

impl JobResult {
    /// The result of the set `renditions` whose main rendition (what a URL without `size`
    /// or `format` serves) is `renditions[main]`: its fields are the main one's; the rest
    /// (animated, placeholder, profile, source) empty, for the caller to fill in.
    pub fn of_set(renditions: Vec<RenditionResult>, main: usize) -> JobResult {
        let m = &renditions[main];
        JobResult {
            width: m.width,
            height: m.height,
            bytes: m.bytes,
            content_type: m.content_type.clone(),
            etag: m.etag.clone(),
            blob_key: m.blob_key.clone(),
            budget: m.budget.clone(),
            animated: false,
            placeholder: None,
            profile: None,
            source: None,
            renditions,
        }
    }

    /// Every blob the result references: the main one, each rendition's and each pending
    /// rendition's source, once each.
    pub fn blob_keys(&self) -> Vec<BlobKey> {
        let mut keys = vec![self.blob_key.clone()];
        for key in self
            .renditions
            .iter()
            .flat_map(|r| std::iter::once(&r.blob_key).chain(&r.source_key))
        {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        keys
    }

    /// Whether any rendition is still to be made by the background lane.
    pub fn has_pending(&self) -> bool {
        self.renditions
            .iter()
            .any(|r| r.status == RenditionStatus::Pending)
    }

    /// Applies renditions the background lane `made` (ready or failed; matched by `spec`)
    /// to those still pending here; returns the sources they no longer need, or `None`
    /// when none was pending (a redelivery: nothing changes).
    pub fn apply_made(&mut self, made: &[RenditionResult]) -> Option<Vec<BlobKey>> {
        let mut freed = Vec::new();
        let mut changed = false;
        for r in &mut self.renditions {
            if r.status != RenditionStatus::Pending {
                continue;
            }
            if let Some(m) = made.iter().find(|m| m.spec == r.spec) {
                freed.extend(r.source_key.take());
                *r = RenditionResult {
                    source_key: None,
                    ..m.clone()
                };
                changed = true;
            }
        }
        changed.then_some(freed)
    }

    /// The blobs of `self` (a replaced result) that `new` does not reference: what a
    /// replace leaves to delete.
    pub fn replaced_by(&self, new: &JobResult) -> Vec<BlobKey> {
        let kept = new.blob_keys();
        self.blob_keys()
            .into_iter()
            .filter(|k| !kept.contains(k))
            .collect()
    }
}

/// The probed input of a job, as `/meta` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    /// Upright width (after EXIF orientation).
    pub width: u32,
    /// Upright height.
    pub height: u32,
    /// `png`, `jpeg`, `webp` or `gif`.
    pub format: String,
    /// More than one frame (the renditions show the first).
    pub animated: bool,
}

/// Where a rendition is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RenditionStatus {
    /// Still to be made (a background lane's).
    Pending,
    /// Stored: served and listed in `srcset`.
    Ready,
    /// Could not be made; the others are served.
    Failed,
}

/// One rendition of a set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenditionResult {
    /// The box edge it fits in (its larger side), as the profile names it.
    pub size: u32,
    /// Real width.
    pub width: u32,
    /// Real height.
    pub height: u32,
    /// `png`, `jpeg` or `webp`.
    pub format: String,
    /// The profile's entry, e.g. `160:webp:80`.
    pub spec: String,
    /// Its media type.
    pub content_type: String,
    /// Encoded size.
    pub bytes: u64,
    /// Strong entity tag: the SHA-256 of the bytes, hex.
    pub etag: String,
    /// Where the bytes are.
    pub blob_key: BlobKey,
    /// What the size budget did.
    pub budget: String,
    /// Pending, ready or failed.
    pub status: RenditionStatus,
    /// While pending: the lossless PNG of its pixels that the background lane encodes
    /// (thumbcore's deferred rendition). Gone once the rendition is ready or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_key: Option<BlobKey>,
}

/// What a page paints while a thumbnail loads, computed from the thumbnail's pixels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placeholder {
    /// ThumbHash, standard base64: decodes to a ~32 px image of the thumbnail's aspect ratio.
    pub thumbhash: String,
    /// BlurHash with 4×3 components.
    pub blurhash: String,
    /// The alpha-weighted mean colour, `#rrggbb`.
    pub average_color: String,
}

/// Why a job failed: a stable code and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    /// Stable code, e.g. `CorruptImage`.
    pub code: Code,
    /// Human-readable detail.
    pub message: String,
}

/// A job as the [`MetaStore`](crate::MetaStore) keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// Whose job: another tenant never sees it.
    pub tenant: Tenant,
    /// The tenant's environment.
    pub environment: Environment,
    /// The thumbnail it creates or replaces.
    pub thumbnail_id: ThumbnailId,
    /// Where it is in its life cycle.
    pub status: JobStatus,
    /// Where the image comes from.
    pub source: JobSource,
    /// RabbitMQ reply routing key, if a producer asked for one.
    pub reply_to: Option<String>,
    /// The profile it makes; none: the worker's default.
    pub profile: Option<String>,
    /// When it was accepted.
    pub created_at: Timestamp,
    /// When a worker last started it.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// How many times a worker started it.
    pub attempts: u32,
    /// Set when succeeded.
    pub result: Option<JobResult>,
    /// Set when failed.
    pub error: Option<JobFailure>,
}

impl JobRecord {
    /// A new queued job `id` for `message`.
    pub fn queued(id: JobId, message: &JobMessage, now: Timestamp) -> Self {
        JobRecord {
            id,
            tenant: message.tenant.clone(),
            environment: message.environment,
            thumbnail_id: message.thumbnail_id.clone(),
            status: JobStatus::Queued,
            source: message.source.clone(),
            reply_to: message.reply_to.clone(),
            profile: message.profile.clone(),
            created_at: now,
            started_at: None,
            finished_at: None,
            attempts: 0,
            result: None,
            error: None,
        }
    }

    /// This (started) job as [`JobStore::finish_succeeded`] leaves it when it applies:
    /// succeeded at `now` with `result`. The conformance suite holds every store to it, so
    /// the worker that wrote it can hand it to waiters without reading it back.
    ///
    /// [`JobStore::finish_succeeded`]: crate::JobStore::finish_succeeded
    #[must_use]
    pub fn succeeded(self, result: JobResult, now: Timestamp) -> Self {
        JobRecord {
            status: JobStatus::Succeeded,
            finished_at: Some(now),
            result: Some(result),
            error: None,
            ..self
        }
    }

    /// The namespace of the thumbnail it makes.
    pub fn namespace(&self) -> Namespace {
        Namespace::new(self.tenant.clone(), self.environment)
    }

    /// The message that (re)runs this job.
    pub fn message(&self) -> JobMessage {
        JobMessage {
            job_id: Some(self.id),
            tenant: self.tenant.clone(),
            environment: self.environment,
            thumbnail_id: self.thumbnail_id.clone(),
            source: self.source.clone(),
            reply_to: self.reply_to.clone(),
            profile: self.profile.clone(),
        }
    }
}

/// A stored thumbnail: what `GET /v1/thumbnails/{id}` serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThumbnailRecord {
    /// Whose thumbnail.
    pub tenant: Tenant,
    /// The tenant's environment.
    pub environment: Environment,
    /// The client's id.
    pub thumbnail_id: ThumbnailId,
    /// The job that produced the current bytes.
    pub job_id: JobId,
    /// When that job was accepted: a replace by an older job never wins over a newer one.
    pub job_created_at: Timestamp,
    /// The bytes and their metadata.
    pub result: JobResult,
    /// When these bytes became current.
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_source_forms() {
        let m = JobMessage::parse(
            br#"{"environment":"development","thumbnailId":"a","source":{"url":"https://x/y.png"}}"#,
        )
        .unwrap();
        assert_eq!(
            m.source,
            JobSource::Url {
                url: "https://x/y.png".into()
            }
        );
        assert_eq!(m.job_id, None);
        let m = JobMessage::parse(
            br#"{"jobId":"0192e4a0-0000-7000-8000-000000000000","environment":"production","thumbnailId":"a","source":{"blobKey":"originals/x"},"replyTo":"r"}"#,
        )
        .unwrap();
        assert!(matches!(m.source, JobSource::Blob { .. }));
        assert_eq!(m.reply_to.as_deref(), Some("r"));
        let m = JobMessage::parse(
            br#"{"environment":"production","thumbnailId":"a","source":{"inline":"iVBORw==","contentType":"image/png"}}"#,
        )
        .unwrap();
        assert_eq!(m.source.inline_bytes().unwrap().unwrap(), b"\x89PNG");
        assert_eq!(JobMessage::parse(&m.to_json()).unwrap(), m);
    }

    #[test]
    fn refuses_malformed_messages() {
        for bad in [
            &br#"{"environment":"staging","thumbnailId":"a","source":{"url":"u"}}"#[..],
            br#"{"environment":"production","thumbnailId":"","source":{"url":"u"}}"#,
            br#"{"environment":"production","thumbnailId":"a","source":{"blobKey":"../etc"}}"#,
            br#"{"environment":"production","thumbnailId":"a","source":{}}"#,
            br#"{"environment":"production","thumbnailId":"a"}"#,
            b"not json",
        ] {
            let err = JobMessage::parse(bad).unwrap_err();
            assert!(matches!(err, Error::Invalid { .. }), "{err}");
        }
    }
}
