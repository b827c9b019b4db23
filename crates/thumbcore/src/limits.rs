//! Resource limits, checked from the header before any pixel buffer is allocated.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::format::{ImageFormat, InputFormats, not_an_image};
use crate::probe::{ImageInfo, probe};

/// Limits on what an input may cost. `Default` gives the safe values of README's image rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input, in bytes. Default 5 MiB.
    pub max_input_bytes: usize,
    /// Largest accepted image, in pixels (width × height as declared). Default 50 000 000.
    pub max_pixels: u64,
    /// Largest accepted width or height. Default 65 535 (JPEG's own ceiling).
    pub max_side: u32,
    /// Smallest accepted width after EXIF orientation. Default 80.
    pub min_width: u32,
    /// Smallest accepted height after EXIF orientation. Default 80.
    pub min_height: u32,
    /// Longest one thumbnail may take, from the start of decoding to the end of encoding;
    /// `None` for no limit. Checked cooperatively: by the JPEG decoder for every row of
    /// input it absorbs and every row it outputs, by the PNG decoder for every row, between
    /// the stages and between the steps of the size-budget ladder. Past it the call fails
    /// with [`Error::ProcessingTimeout`]. Default 30 s.
    pub max_duration: Option<Duration>,
    /// Input formats accepted. Default PNG and JPEG; WebP and GIF are opt-in. Another
    /// format is refused as if thumbd could not read it: `InvalidThumbnailFormat` for its
    /// bytes, `InvalidHeaderValue` for its declared type.
    pub accept_formats: InputFormats,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 5 * 1024 * 1024,
            max_pixels: 50_000_000,
            max_side: 65_535,
            min_width: 80,
            min_height: 80,
            max_duration: Some(Duration::from_secs(30)),
            accept_formats: InputFormats::DEFAULT,
        }
    }
}

impl Limits {
    /// Fails with [`Error::InputTooLarge`] when `len` bytes are over the input limit.
    pub fn check_input_len(&self, len: usize) -> Result<()> {
        if len > self.max_input_bytes {
            return Err(Error::InputTooLarge {
                bytes: len,
                max: self.max_input_bytes,
            });
        }
        Ok(())
    }

    /// Sniffs `bytes`, refuses a format not in [`accept_formats`](Self::accept_formats)
    /// (with the error unknown bytes get), then [`probe`]s the header. The input length and
    /// the header's dimensions are left to [`check_input_len`](Self::check_input_len) and
    /// [`check`](Self::check).
    pub fn probe(&self, bytes: &[u8]) -> Result<ImageInfo> {
        self.check_format(ImageFormat::sniff(bytes))?;
        probe(bytes)
    }

    fn check_format(&self, format: Option<ImageFormat>) -> Result<()> {
        match format {
            Some(f) if self.accept_formats.contains(f) => Ok(()),
            _ => Err(not_an_image(self.accept_formats)),
        }
    }

    /// Checks a probed image: a format not accepted first, then too many pixels (the costly
    /// case), then too small.
    pub fn check(&self, info: &ImageInfo) -> Result<()> {
        self.check_format(Some(info.format))?;
        let (w, h) = (info.stored_width, info.stored_height);
        if u64::from(w) * u64::from(h) > self.max_pixels || w > self.max_side || h > self.max_side {
            return Err(Error::DimensionsTooLarge {
                width: info.width,
                height: info.height,
                max_pixels: self.max_pixels,
                max_side: self.max_side,
            });
        }
        if info.width < self.min_width || info.height < self.min_height {
            return Err(Error::TooSmall {
                width: info.width,
                height: info.height,
                min_width: self.min_width,
                min_height: self.min_height,
            });
        }
        Ok(())
    }

    /// The most libjpeg may hold in full-image coefficient buffers for any accepted image:
    /// 2 bytes × 64 coefficients per 8×8 block, i.e. 2 bytes per pixel per component, for
    /// four full-resolution components (CMYK 4:4:4), plus [`DECODER_SLACK`]. Each decode is
    /// held to the smaller [`ImageInfo::coefficient_bytes`] of its own header (what the
    /// worker admits it for, through `ThumbSpec::decode_cost`) plus [`DECODER_SLACK`].
    pub(crate) fn decoder_memory(&self) -> usize {
        usize::try_from(self.max_pixels.saturating_mul(8))
            .unwrap_or(usize::MAX)
            .saturating_add(DECODER_SLACK)
    }
}

/// What a decoder may allocate beyond the buffers counted from the header: libjpeg's
/// tables and row buffers, a PNG's metadata chunks.
pub(crate) const DECODER_SLACK: usize = 16 << 20;

/// Most bytes an embedded PNG colour profile (iCCP) may inflate to; a larger one is ignored
/// (the image is taken as sRGB). Real profiles are a few KiB, rarely a few MiB.
pub(crate) const MAX_ICC_BYTES: usize = 16 << 20;

/// A point in time by which a thumbnail must be done (see [`Limits::max_duration`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Option<(std::time::Instant, Duration)>,
}

impl Deadline {
    /// Starts the clock of `limits`'s time limit.
    pub(crate) fn start(limits: &Limits) -> Self {
        Deadline {
            at: limits
                .max_duration
                .map(|d| (std::time::Instant::now().checked_add(d), d))
                .and_then(|(at, d)| at.map(|at| (at, d))),
        }
    }

    /// Fails with [`Error::ProcessingTimeout`] once the deadline has passed.
    pub(crate) fn check(&self) -> Result<()> {
        match self.at {
            Some((at, _)) if std::time::Instant::now() >= at => Err(self.error()),
            _ => Ok(()),
        }
    }

    /// The error this deadline fails with.
    pub(crate) fn error(&self) -> Error {
        Error::ProcessingTimeout {
            limit: self.at.map_or(Duration::ZERO, |(_, d)| d),
        }
    }

    /// Milliseconds left (rounded up, 0 when passed), or `None` without a limit.
    pub(crate) fn remaining_ms(&self) -> Option<u64> {
        self.at.map(|(at, _)| {
            let left = at.saturating_duration_since(std::time::Instant::now());
            u64::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
        })
    }
}
