//! WebP: size, alpha, EXIF orientation and animation from the RIFF chunks (`VP8 `, `VP8L`,
//! or `VP8X` and the chunks after it), without decoding.

use super::{ImageInfo, info};
use crate::error::{Error, Result};
use crate::format::ImageFormat;
use crate::limits::MAX_ICC_BYTES;
use crate::orientation::Orientation;

fn le16(b: &[u8], at: usize) -> u32 {
    u32::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le24(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], 0])
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads the first chunk's header; for `VP8X`, walks the chunks after it for `EXIF` and
/// counts `ANMF` frames up to two.
pub(super) fn probe(bytes: &[u8]) -> Result<ImageInfo> {
    let truncated = || Error::corrupt("WebP header is truncated");
    // "RIFF", size, "WEBP", then a chunk: fourcc, size, data (at 20).
    let kind = bytes.get(12..16).ok_or_else(truncated)?;
    let data = bytes.get(20..30).ok_or_else(truncated)?;
    let (w, h, alpha, orientation, animated) = match kind {
        b"VP8 " => {
            // Frame tag (3 bytes; bit 0 clear for a key frame), start code, 14-bit sizes.
            if data[0] & 1 != 0 || data[3..6] != [0x9D, 0x01, 0x2A] {
                return Err(Error::corrupt("WebP VP8 data does not start a key frame"));
            }
            (
                le16(data, 6) & 0x3FFF,
                le16(data, 8) & 0x3FFF,
                false,
                Orientation::Normal,
                false,
            )
        }
        b"VP8L" => {
            // Signature 0x2F, then 14 bits width − 1, 14 bits height − 1, 1 bit alpha.
            if data[0] != 0x2F {
                return Err(Error::corrupt("WebP VP8L data has a wrong signature"));
            }
            let bits = le32(data, 1).ok_or_else(truncated)?;
            (
                (bits & 0x3FFF) + 1,
                ((bits >> 14) & 0x3FFF) + 1,
                bits >> 28 & 1 == 1,
                Orientation::Normal,
                false,
            )
        }
        b"VP8X" => {
            // Flags (alpha 0x10, EXIF 0x08, animation 0x02), 3 reserved bytes, then
            // 24 bits canvas width − 1 and height − 1.
            let flags = data[0];
            let first = le32(bytes, 16).ok_or_else(truncated)?;
            let (orientation, frames) = walk(bytes, chunk_end(20, first));
            (
                le24(data, 4) + 1,
                le24(data, 7) + 1,
                flags & 0x10 != 0,
                orientation,
                flags & 0x02 != 0 && frames > 1,
            )
        }
        _ => {
            return Err(Error::corrupt(
                "WebP has no VP8, VP8L or VP8X chunk where the image starts",
            ));
        }
    };
    if w == 0 || h == 0 {
        return Err(Error::corrupt(format!(
            "WebP declares an invalid size {w}×{h}"
        )));
    }
    let channels = if alpha { 4 } else { 3 };
    let mut image = info(ImageFormat::WebP, w, h, orientation, false, channels, None);
    image.animated = animated;
    Ok(image)
}

/// Where the chunk whose data starts at `start` with `len` bytes ends (chunks are padded to
/// an even length).
fn chunk_end(start: usize, len: u32) -> usize {
    start
        .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
        .saturating_add(usize::try_from(len & 1).unwrap_or(0))
}

/// The orientation in the `EXIF` chunk and the number of `ANMF` chunks (counting no further
/// than 2), walking the chunks from byte `at`. Best effort: a chunk that runs past the end
/// stops the walk; decoding reports the damage.
fn walk(bytes: &[u8], mut at: usize) -> (Orientation, u32) {
    let (mut orientation, mut frames) = (Orientation::Normal, 0);
    while let (Some(kind), Some(len)) = (bytes.get(at..at + 4), le32(bytes, at + 4)) {
        let end = chunk_end(at + 8, len);
        match kind {
            b"EXIF" if (len as usize) <= MAX_ICC_BYTES => {
                let Some(exif) = bytes.get(at + 8..at + 8 + len as usize) else {
                    break;
                };
                // The TIFF block, though some writers keep JPEG's "Exif\0\0" before it.
                let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
                orientation = Orientation::from_exif_block(tiff);
            }
            // Every frame header is walked: EXIF comes after the frames.
            b"ANMF" => frames = (frames + 1).min(2),
            _ => {}
        }
        at = end;
    }
    (orientation, frames)
}
