//! GIF: the logical screen's size from the header, and whether there is a second image,
//! found by walking the blocks (sub-blocks are skipped by their lengths, nothing inflated).

use super::{ImageInfo, info};
use crate::error::{Error, Result};
use crate::format::ImageFormat;
use crate::orientation::Orientation;

/// Reads the logical screen descriptor and counts images up to two.
pub(super) fn probe(bytes: &[u8]) -> Result<ImageInfo> {
    // "GIF89a", then width, height (LE), flags, background index, aspect ratio.
    let lsd = bytes
        .get(6..13)
        .ok_or_else(|| Error::corrupt("GIF header is truncated"))?;
    let w = u32::from(u16::from_le_bytes([lsd[0], lsd[1]]));
    let h = u32::from(u16::from_le_bytes([lsd[2], lsd[3]]));
    if w == 0 || h == 0 {
        return Err(Error::corrupt(format!(
            "GIF declares an invalid screen size {w}×{h}"
        )));
    }
    let mut image = info(ImageFormat::Gif, w, h, Orientation::Normal, false, 4, None);
    image.animated = images(bytes, 13 + color_table_len(lsd[4])) > 1;
    Ok(image)
}

/// Bytes of the colour table a screen or image descriptor's `flags` announce.
fn color_table_len(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 7) + 1)
    }
}

/// Images (image descriptors) from byte `at` on, counting no further than 2. A truncated or
/// damaged stream ends the count: decoding reports the damage.
fn images(bytes: &[u8], mut at: usize) -> u32 {
    let mut images = 0;
    loop {
        match bytes.get(at) {
            // Extension: introducer, label, sub-blocks.
            Some(0x21) => match skip_sub_blocks(bytes, at + 2) {
                Some(next) => at = next,
                None => return images,
            },
            // Image descriptor (10 bytes), local colour table, LZW code size, sub-blocks.
            Some(0x2C) => {
                images += 1;
                let Some(&flags) = bytes.get(at + 9) else {
                    return images;
                };
                if images == 2 {
                    return images;
                }
                match skip_sub_blocks(bytes, at + 10 + color_table_len(flags) + 1) {
                    Some(next) => at = next,
                    None => return images,
                }
            }
            // Trailer (0x3B), damage or the end.
            _ => return images,
        }
    }
}

/// The byte after the sub-blocks starting at `at` (each a length byte and that many bytes,
/// ended by a zero length), or `None` when they run past the end.
fn skip_sub_blocks(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = usize::from(*bytes.get(at)?);
        at += 1;
        if len == 0 {
            return Some(at);
        }
        at += len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GIF of `frames` 1×1 images on a `w`×`h` screen, written by hand.
    fn gif(w: u16, h: u16, frames: usize) -> Vec<u8> {
        let mut g = b"GIF89a".to_vec();
        g.extend_from_slice(&w.to_le_bytes());
        g.extend_from_slice(&h.to_le_bytes());
        g.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
        for _ in 0..frames {
            // Graphic control extension, then a 1×1 image: LZW code size 2, one sub-block.
            g.extend_from_slice(&[0x21, 0xF9, 4, 0, 10, 0, 0, 0]);
            g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0]);
        }
        g.push(0x3B);
        g
    }

    #[test]
    fn screen_size_and_frames() {
        let one = probe(&gif(300, 200, 1)).unwrap();
        assert_eq!((one.width, one.height, one.channels), (300, 200, 4));
        assert!(!one.animated);
        assert!(probe(&gif(300, 200, 3)).unwrap().animated);
        // Truncated in the second frame: still two images seen.
        let two = gif(300, 200, 2);
        assert!(probe(&two[..two.len() - 5]).unwrap().animated);
        assert_eq!(probe(&gif(0, 200, 1)).unwrap_err().code(), "CorruptImage");
        assert_eq!(probe(b"GIF89a\x01\0").unwrap_err().code(), "CorruptImage");
    }
}
