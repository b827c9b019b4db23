//! The one error type of thumbcore, with its stable wire [`Code`]s.

pub use thumbd_codes::Code;

/// What went wrong while probing or thumbnailing an image.
///
/// Every variant has a stable [`code`](Error::code): the name clients see in the API's JSON
/// error body and in a failed job's status. The list is exhaustive on purpose, so a new
/// variant breaks the build until the API and the worker decide what it means for them.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// The bytes are none of the accepted formats, or do not match the declared content
    /// type.
    #[error("{0}")]
    InvalidFormat(String),
    /// The declared content type is not one of the accepted input formats (by default
    /// `image/gif`, `image/webp` and anything not an image thumbd reads).
    #[error("content type {content_type:?} is not supported: use {}", accepted.media_types())]
    UnsupportedContentType {
        /// The declared type, as given.
        content_type: String,
        /// What is accepted.
        accepted: crate::InputFormats,
    },
    /// The input is larger than [`Limits::max_input_bytes`](crate::Limits::max_input_bytes).
    #[error("the image is {bytes} bytes; the limit is {max} bytes")]
    InputTooLarge {
        /// Size of the input.
        bytes: usize,
        /// The configured limit.
        max: usize,
    },
    /// Smaller than [`Limits::min_width`](crate::Limits) × `min_height` after orientation.
    #[error("the image is {width}×{height}; thumbnails must be at least {min_width}×{min_height}")]
    TooSmall {
        /// Width after EXIF orientation.
        width: u32,
        /// Height after EXIF orientation.
        height: u32,
        /// Minimum width.
        min_width: u32,
        /// Minimum height.
        min_height: u32,
    },
    /// More pixels than [`Limits::max_pixels`](crate::Limits::max_pixels), or a side over
    /// [`Limits::max_side`](crate::Limits::max_side).
    #[error(
        "the image is {width}×{height}; at most {max_pixels} pixels and {max_side} per side are accepted"
    )]
    DimensionsTooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// The pixel limit.
        max_pixels: u64,
        /// The side limit.
        max_side: u32,
    },
    /// The bytes claim to be an image of an accepted format but cannot be decoded (truncated, damaged, …).
    #[error("the image is corrupt: {0}")]
    Corrupt(String),
    /// Processing took longer than [`Limits::max_duration`](crate::Limits::max_duration):
    /// the input is too costly to decode (thousands of scans, say). Permanent, like
    /// `CorruptImage`: the same bytes would take as long again.
    #[error("processing the image took longer than the limit of {limit:?}")]
    ProcessingTimeout {
        /// The configured limit.
        limit: std::time::Duration,
    },
    /// A failure that is not the input's fault (e.g. memory could not be reserved).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable code (`InvalidThumbnailFormat`, `CorruptImage`, …).
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidFormat(_) => Code::InvalidThumbnailFormat,
            Error::UnsupportedContentType { .. } => Code::InvalidHeaderValue,
            Error::InputTooLarge { .. } => Code::RequestTooLarge,
            Error::TooSmall { .. } => Code::ThumbnailTooSmall,
            Error::DimensionsTooLarge { .. } => Code::ImageDimensionsTooLarge,
            Error::Corrupt(_) => Code::CorruptImage,
            Error::ProcessingTimeout { .. } => Code::ProcessingTimeout,
            Error::Internal(_) => Code::InternalError,
        }
    }

    /// True when the input itself is at fault and retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Error::Internal(_))
    }

    pub(crate) fn corrupt(msg: impl std::fmt::Display) -> Self {
        Error::Corrupt(msg.to_string())
    }
}

/// thumbcore's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `len` zero bytes in `spare` when its capacity suffices (its pages are already mapped: no
/// page faults), else in a new buffer ([`try_zeroed`]).
pub(crate) fn zeroed_in(spare: Option<Vec<u8>>, len: usize) -> Result<Vec<u8>> {
    match spare {
        Some(mut v) if v.capacity() >= len => {
            v.clear();
            v.resize(len, 0);
            Ok(v)
        }
        _ => try_zeroed(len),
    }
}

/// Reserves a zeroed buffer of `len` bytes without aborting the process when memory is short.
pub(crate) fn try_zeroed(len: usize) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::Internal(format!("cannot reserve {len} bytes for pixels")))?;
    v.resize(len, 0);
    Ok(v)
}
