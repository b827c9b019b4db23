//! PNG through the `png` crate: every colour type and bit depth, normalised to 8 bits.

use std::io::Cursor;

use super::{Decoded, PixelLayout, Pixels};
use crate::error::{Error, Result, zeroed_in};
use crate::limits::{Deadline, Limits, MAX_ICC_BYTES};

/// Rows decoded between two looks at the deadline.
const ROWS_PER_CHECK: usize = 16;

/// What png's `Limits` allow: its memory limit covers the buffer of the chunk being read
/// (other than image data: at most twice the input, as it doubles) and what an iCCP
/// profile inflates to, which png bounds by what is left of the limit; a profile that does
/// not fit is dropped (png ignores iCCP errors) and the image is taken as sRGB. Text chunks
/// are not read at all. So a profile of up to [`MAX_ICC_BYTES`] is always read, and none is
/// inflated past that plus what the chunk buffers leave unused (≤ 26 MiB with the default
/// 5 MiB inputs; png's output vector grows by doubling, so the heap briefly holds ~2.5×),
/// never hundreds of MB.
pub(crate) fn png_memory(limits: &Limits) -> usize {
    limits
        .max_input_bytes
        .saturating_mul(2)
        .saturating_add(MAX_ICC_BYTES)
}

/// Decodes `bytes`, into `spare` when it is large enough, row by row so that it can stop at
/// `deadline`.
pub(crate) fn decode_png(
    bytes: &[u8],
    limits: &Limits,
    spare: Option<Vec<u8>>,
    deadline: &Deadline,
) -> Result<Decoded> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: png_memory(limits),
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
    let stride = size / (height as usize).max(1);
    if reader.info().interlaced {
        let bits_per_pixel = u8::try_from(layout.channels() * 8).unwrap_or(32);
        let mut rows = 0usize;
        while let Some(row) = reader.next_interlaced_row().map_err(png_error)? {
            if let png::InterlaceInfo::Adam7(pass) = row.interlace() {
                png::expand_interlaced_row(&mut data, stride, row.data(), pass, bits_per_pixel);
            }
            rows += 1;
            if rows.is_multiple_of(ROWS_PER_CHECK) {
                deadline.check()?;
            }
        }
    } else {
        for (i, row) in data.chunks_exact_mut(stride.max(1)).enumerate() {
            if reader.read_row(row).map_err(png_error)?.is_none() {
                return Err(Error::corrupt(
                    "PNG has fewer rows than its header declares",
                ));
            }
            if i % ROWS_PER_CHECK == ROWS_PER_CHECK - 1 {
                deadline.check()?;
            }
        }
        // Reads to the end of the image data, as a whole-frame decode does.
        if reader.read_row(&mut []).map_err(png_error)?.is_some() {
            return Err(Error::corrupt("PNG has more rows than its header declares"));
        }
    }
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
