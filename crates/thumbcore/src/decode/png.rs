//! PNG through the `png` crate: every colour type and bit depth, normalised to 8 bits.

use std::io::Cursor;

use super::{Decoded, PixelLayout, Pixels};
use crate::error::{Error, Result, zeroed_in};
use crate::limits::Limits;

/// Decodes `bytes`, into `spare` when it is large enough.
pub(crate) fn decode_png(bytes: &[u8], limits: &Limits, spare: Option<Vec<u8>>) -> Result<Decoded> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: limits.decoder_memory(),
        },
    );
    // Palette → RGB(A), tRNS → alpha, low bit depths → 8, 16 → 8.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    decoder.set_ignore_text_chunk(true);
    let mut reader = decoder.read_info().map_err(png_error)?;
    let icc = reader.info().icc_profile.as_ref().map(|p| p.to_vec());
    let (width, height) = reader.info().size();
    let layout = match reader.output_color_type() {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => PixelLayout::Gray,
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => PixelLayout::GrayAlpha,
        (png::ColorType::Rgb, png::BitDepth::Eight) => PixelLayout::Rgb,
        (png::ColorType::Rgba, png::BitDepth::Eight) => PixelLayout::Rgba,
        other => return Err(Error::corrupt(format!("unexpected PNG output {other:?}"))),
    };
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::corrupt("PNG is too large to address"))?;
    let mut data = zeroed_in(spare, size)?;
    reader.next_frame(&mut data).map_err(png_error)?;
    Ok(Decoded {
        pixels: Pixels {
            width: width as usize,
            height: height as usize,
            layout,
            data,
        },
        icc,
    })
}

fn png_error(e: png::DecodingError) -> Error {
    match e {
        png::DecodingError::LimitsExceeded => {
            Error::corrupt("PNG metadata exceeds the decoder's memory limit")
        }
        png::DecodingError::IoError(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::corrupt("PNG data is truncated")
        }
        other => Error::corrupt(other),
    }
}
