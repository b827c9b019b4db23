//! Decoding PNG, JPEG, WebP and GIF into interleaved 8-bit pixels.

mod gif;
mod jpeg;
mod png;
mod webp;

pub(crate) use gif::decode_gif;
pub(crate) use jpeg::JpegDecoder;
pub(crate) use png::decode_png;
pub(crate) use webp::decode_webp;

/// How the bytes of a decoded pixel are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PixelLayout {
    Gray,
    GrayAlpha,
    Rgb,
    Rgba,
    /// Four ink channels, no alpha. `inverted` when 0 means full ink (Adobe's convention,
    /// which nearly every CMYK JPEG follows).
    Cmyk {
        inverted: bool,
    },
}

impl PixelLayout {
    pub(crate) fn channels(self) -> usize {
        match self {
            PixelLayout::Gray => 1,
            PixelLayout::GrayAlpha => 2,
            PixelLayout::Rgb => 3,
            PixelLayout::Rgba | PixelLayout::Cmyk { .. } => 4,
        }
    }

    pub(crate) fn has_alpha(self) -> bool {
        matches!(self, PixelLayout::GrayAlpha | PixelLayout::Rgba)
    }
}

/// An image in memory: interleaved 8-bit samples, rows packed with no padding.
#[derive(Debug)]
pub(crate) struct Pixels {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) layout: PixelLayout,
    pub(crate) data: Vec<u8>,
}

/// A decoded image and the colour profile it came with.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) pixels: Pixels,
    pub(crate) icc: Option<Vec<u8>>,
}
