//! GIF through the `gif` crate: the first frame, composed onto the logical screen (what a
//! browser shows before the animation moves on), transparent where the frame does not
//! reach or is transparent.

use std::num::NonZeroU64;

use super::{Decoded, PixelLayout, Pixels};
use crate::error::{Error, Result, try_zeroed, zeroed_in};
use crate::limits::Deadline;
use crate::probe::ImageInfo;

/// Decodes the first frame of the GIF `info` was probed from, into `spare` when it is large
/// enough. The frame's own buffer is at most the screen's size (a larger frame is refused
/// as corrupt before it is allocated), as [`ImageInfo::working_bytes`] counts it.
pub(crate) fn decode_gif(
    bytes: &[u8],
    info: &ImageInfo,
    spare: Option<Vec<u8>>,
    deadline: &Deadline,
) -> Result<Decoded> {
    let (sw, sh) = (info.stored_width as usize, info.stored_height as usize);
    let screen = sw * sh * 4;
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    options.set_memory_limit(gif::MemoryLimit::Bytes(
        NonZeroU64::new(screen as u64).unwrap_or(NonZeroU64::MIN),
    ));
    let mut decoder = options.read_info(bytes).map_err(gif_error)?;
    if (usize::from(decoder.width()), usize::from(decoder.height())) != (sw, sh) {
        return Err(Error::corrupt("GIF screen size differs from its header"));
    }
    let icc = decoder.icc_profile().map(<[u8]>::to_vec);
    let frame = decoder
        .next_frame_info()
        .map_err(gif_error)?
        .ok_or_else(|| Error::corrupt("GIF has no image"))?;
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    let (fw, fh) = (usize::from(frame.width), usize::from(frame.height));
    if fw * fh > sw * sh {
        return Err(Error::corrupt(format!(
            "GIF frame {fw}×{fh} is larger than its {sw}×{sh} screen"
        )));
    }
    let mut data = zeroed_in(spare, screen)?;
    if (left, top, fw, fh) == (0, 0, sw, sh) {
        decoder.read_into_buffer(&mut data).map_err(gif_error)?;
    } else {
        let mut own = try_zeroed(fw * fh * 4)?;
        decoder.read_into_buffer(&mut own).map_err(gif_error)?;
        deadline.check()?;
        // Clipped to the screen: a frame may sit partly outside it.
        let cols = fw.min(sw.saturating_sub(left));
        for (y, row) in own
            .chunks_exact(fw * 4)
            .enumerate()
            .take(sh.saturating_sub(top))
        {
            let at = ((top + y) * sw + left) * 4;
            data[at..at + cols * 4].copy_from_slice(&row[..cols * 4]);
        }
    }
    deadline.check()?;
    Ok(Decoded {
        pixels: Pixels {
            width: sw,
            height: sh,
            layout: PixelLayout::Rgba,
            data,
        },
        icc,
    })
}

fn gif_error(e: gif::DecodingError) -> Error {
    match e {
        gif::DecodingError::Io(ref io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::corrupt("GIF data is truncated")
        }
        gif::DecodingError::MemoryLimit => {
            Error::corrupt("GIF frame is larger than its logical screen")
        }
        other => Error::corrupt(format!("GIF: {other}")),
    }
}
