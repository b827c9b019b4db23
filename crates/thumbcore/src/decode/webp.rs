//! WebP through `image-webp`: lossy, lossless and extended files, the first frame of an
//! animation (composed on its canvas by the decoder).

use std::io::Cursor;

use super::{Decoded, PixelLayout, Pixels};
use crate::error::{Error, Result, zeroed_in};
use crate::limits::{Deadline, MAX_ICC_BYTES};
use crate::probe::ImageInfo;

/// Decodes the WebP `info` was probed from, into `spare` when it is large enough. The
/// decoder's working memory is counted by [`ImageInfo::working_bytes`]; metadata chunks
/// (ICC, EXIF) are read only up to [`MAX_ICC_BYTES`]. image-webp decodes in one call, so
/// the deadline is checked before and after it.
pub(crate) fn decode_webp(
    bytes: &[u8],
    info: &ImageInfo,
    spare: Option<Vec<u8>>,
    deadline: &Deadline,
) -> Result<Decoded> {
    let mut decoder = image_webp::WebPDecoder::new(Cursor::new(bytes)).map_err(webp_error)?;
    if decoder.dimensions() != (info.stored_width, info.stored_height) {
        return Err(Error::corrupt("WebP size differs from its header"));
    }
    decoder.set_memory_limit(MAX_ICC_BYTES);
    // A profile that cannot be read is dropped (the image is taken as sRGB), as for PNG.
    let icc = decoder.icc_profile().ok().flatten();
    let layout = if decoder.has_alpha() {
        PixelLayout::Rgba
    } else {
        PixelLayout::Rgb
    };
    let size = decoder
        .output_buffer_size()
        .ok_or_else(|| Error::corrupt("WebP is too large to address"))?;
    let mut data = zeroed_in(spare, size)?;
    deadline.check()?;
    decoder.read_image(&mut data).map_err(webp_error)?;
    deadline.check()?;
    Ok(Decoded {
        pixels: Pixels {
            width: info.stored_width as usize,
            height: info.stored_height as usize,
            layout,
            data,
        },
        icc,
    })
}

fn webp_error(e: image_webp::DecodingError) -> Error {
    match e {
        image_webp::DecodingError::IoError(ref io)
            if io.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            Error::corrupt("WebP data is truncated")
        }
        other => Error::corrupt(format!("WebP: {other}")),
    }
}
