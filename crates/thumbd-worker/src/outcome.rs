//! What happened to one delivery, and the error that decides between retry and give-up.

use std::time::Duration;
use thumbd_codes::Code;

use thumbd_jobs::JobId;

/// The result of [`Worker::process_one`](crate::Worker::process_one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The thumbnail is stored and current (or superseded by a newer job: `current` false).
    Succeeded {
        /// The job.
        job: JobId,
        /// Whether its bytes are the ones served now.
        current: bool,
    },
    /// The job finished `failed` with a stable code (a bad image, a missing source…).
    Failed {
        /// The job.
        job: JobId,
        /// Its code.
        code: Code,
    },
    /// The job had already finished (a redelivery): acked without doing anything.
    Skipped {
        /// The job.
        job: JobId,
    },
    /// A transient failure: the message comes back after `delay`.
    Retried {
        /// The job.
        job: JobId,
        /// The backoff.
        delay: Duration,
    },
    /// The message was malformed or failed too often; it is in the dead-letter store.
    DeadLettered {
        /// The job, when the message was readable.
        job: Option<JobId>,
        /// Why.
        reason: String,
    },
    /// The queue no longer held this lease when settling it (it timed out or the
    /// connection dropped); the next delivery is skipped as already finished, or redone.
    LeaseLost {
        /// The job.
        job: JobId,
    },
}

/// Why a step failed, sorted by what the worker does about it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    /// The job cannot succeed: finish it `failed` with this code.
    #[error("{code}: {message}")]
    Permanent { code: Code, message: String },
    /// A backend failed: retry later. A backend that is down (an error that says it is
    /// transient) is waited out however long it takes; anything else counts toward the
    /// limit ([`StepError::counts_toward_limit`]).
    #[error(transparent)]
    Transient(#[from] thumbd_jobs::Error),
    /// Neither the input's fault nor a backend's (thumbcore's internal errors): retried, but
    /// the job is given up on once it has been retried `max_deliveries` times in all.
    #[error("{0}")]
    Unexpected(String),
    /// The client's URL source failed in a way that may pass (a timeout, a 503): retried
    /// until the job's fetch attempts run out, then `SourceFetchFailed`. The client's
    /// problem, not the operator's: logged at info.
    #[error("URL source: {0}")]
    Source(String),
}

impl StepError {
    /// Whether retrying it counts toward giving the job up: everything but a backend that
    /// says it is down (which a job waits out), so an error that repeats for the same job
    /// cannot make it loop for ever.
    pub(crate) fn counts_toward_limit(&self) -> bool {
        match self {
            StepError::Transient(e) => !e.is_transient(),
            // Bounded by the fetch attempts instead.
            StepError::Source(_) => false,
            StepError::Unexpected(_) | StepError::Permanent { .. } => true,
        }
    }

    pub(crate) fn permanent(code: Code, message: impl Into<String>) -> Self {
        StepError::Permanent {
            code,
            message: message.into(),
        }
    }

    /// The step error for a failure of the image work (thumbcore's) with `code`: every code
    /// decided here, with no wildcard, so a new one does not build until it is.
    pub(crate) fn from_image(code: Code, message: String) -> Self {
        match code {
            // The input's fault: the same bytes fail again.
            Code::InvalidThumbnailFormat
            | Code::InvalidHeaderValue
            | Code::MissingRequiredHeader
            | Code::RequestTooLarge
            | Code::ThumbnailTooSmall
            | Code::ImageDimensionsTooLarge
            | Code::CorruptImage
            | Code::ProcessingTimeout
            | Code::SourceFetchFailed
            | Code::SourceNotAllowed
            | Code::SourceTooLarge => StepError::permanent(code, message),
            // Neither the input's fault nor a backend's (memory could not be reserved, a
            // bug): retried, within the job's limit.
            Code::InternalError => StepError::Unexpected(message),
            // A backend: waited out.
            Code::ServiceUnavailable => {
                StepError::Transient(thumbd_jobs::Error::unavailable("image work", &message))
            }
            // Codes of a request, not of image work: a job that meets one cannot succeed.
            Code::InvalidQueryParameter
            | Code::InvalidRequestBody
            | Code::HeaderNotFound
            | Code::InvalidToken
            | Code::InsufficientPermissions
            | Code::InvalidSignature
            | Code::ThumbnailNotFound
            | Code::RenditionNotFound
            | Code::JobNotFound
            | Code::ContextNotFound
            | Code::UploadTicketNotFound
            | Code::WebhookNotFound
            | Code::WebhookUrlNotAllowed
            | Code::RouteNotFound
            | Code::MethodNotAllowed
            | Code::InvalidThumbnailRequest
            | Code::TooManyRequests => StepError::permanent(code, message),
        }
    }
}
