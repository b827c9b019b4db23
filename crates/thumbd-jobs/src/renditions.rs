//! The background lane of renditions: AVIF renditions are encoded after their job has
//! succeeded (README, Renditions). A job whose set has such renditions stores each one's
//! exact pixels as a source blob, lists it `pending`, and pushes a [`RenditionWork`] onto
//! the [`RENDITION_LANE`] before it finishes; a lane consumer encodes them and records them
//! with [`JobStore::finish_renditions`](crate::JobStore::finish_renditions).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::JobId;

/// The queue lane of deferred renditions (SQLite lane name; RabbitMQ queues
/// `{namespace}.renditions`).
pub const RENDITION_LANE: &str = "renditions";

/// A lane message: make the pending renditions of job `job_id`. Idempotent: a job with
/// none pending (made already, failed, replaced, purged) is acknowledged as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenditionWork {
    /// The succeeded (or about to succeed) job whose result lists them.
    pub job_id: JobId,
}

impl RenditionWork {
    /// Parses a lane message.
    pub fn parse(body: &[u8]) -> Result<Self> {
        serde_json::from_slice(body).map_err(|e| Error::invalid("message", e.to_string()))
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a RenditionWork always serialises")
    }
}
