//! Resource limits, checked from the header before any pixel buffer is allocated.

use crate::error::{Error, Result};
use crate::probe::ImageInfo;

/// Limits on what an input may cost. `Default` gives the safe values of SPEC §4.
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 5 * 1024 * 1024,
            max_pixels: 50_000_000,
            max_side: 65_535,
            min_width: 80,
            min_height: 80,
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

    /// Checks a probed image: too many pixels first (the costly case), then too small.
    pub fn check(&self, info: &ImageInfo) -> Result<()> {
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

    /// Bytes a decoder may use for its own working memory (progressive JPEG coefficients,
    /// PNG metadata), derived from the pixel limit so both move together.
    pub(crate) fn decoder_memory(&self) -> usize {
        usize::try_from(self.max_pixels.saturating_mul(8)).unwrap_or(usize::MAX)
    }
}
