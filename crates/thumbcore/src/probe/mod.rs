//! `probe`: format, size and orientation from the header alone, without decoding pixels.
//!
//! The API calls this on every upload before accepting it, so it walks the container
//! structure (JPEG markers, PNG chunks, GIF blocks, WebP chunks) and allocates nothing but
//! the `ImageInfo`.

mod gif;
mod webp;

use crate::error::{Error, Result};
use crate::format::{ImageFormat, InputFormats, not_an_image};
use crate::orientation::Orientation;

/// What the header says about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The sniffed format.
    pub format: ImageFormat,
    /// Width as displayed, after EXIF orientation.
    pub width: u32,
    /// Height as displayed, after EXIF orientation.
    pub height: u32,
    /// Width as stored in the file.
    pub stored_width: u32,
    /// Height as stored in the file.
    pub stored_height: u32,
    /// The EXIF orientation (PNG `eXIf`, JPEG APP1 or WebP `EXIF`).
    pub orientation: Orientation,
    /// Progressive JPEG or interlaced (Adam7) PNG.
    pub progressive: bool,
    /// Channels of the decoded pixels: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA or CMYK (PNG
    /// palettes and `tRNS` expand to RGB(A) or gray + alpha, as the decoder does).
    pub channels: u8,
    /// JPEG only: the frame's components and whether the file has several scans.
    pub jpeg: Option<JpegLayout>,
    /// GIF or WebP with more than one frame (thumbd makes the thumbnail of the first).
    pub animated: bool,
}

/// How a JPEG's frame is laid out, as far as the decoder's memory depends on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegLayout {
    /// Sampling factors (horizontal, vertical), one pair per component of the frame.
    pub sampling: Vec<(u8, u8)>,
    /// The image comes in several scans: progressive, or a sequential file whose first
    /// scan holds fewer components than the frame (or whose first scan the probe could not
    /// find, counted as several to be safe). libjpeg then holds every coefficient of the
    /// image in memory until the last scan.
    pub multi_scan: bool,
}

impl ImageInfo {
    /// Number of pixels (width × height).
    pub fn pixels(&self) -> u64 {
        u64::from(self.stored_width) * u64::from(self.stored_height)
    }

    /// Bytes a decoder holds beyond its output pixels, for memory accounting: a JPEG's
    /// [`coefficient_bytes`](Self::coefficient_bytes); for GIF the first frame's own RGBA
    /// buffer (at most the screen's size: a larger frame is refused), composed onto the
    /// screen afterwards; for WebP the decoder's working planes (lossy YUV 1.5 B/px and an
    /// alpha plane that may itself be a lossless image, 4 B/px; lossless ARGB 4 B/px),
    /// counted as 6 bytes per pixel, and 8 for an animation (its RGBA canvas and frame).
    /// 0 for PNG.
    pub fn working_bytes(&self) -> u64 {
        match self.format {
            ImageFormat::Jpeg => self.coefficient_bytes(),
            ImageFormat::Gif => self.pixels() * 4,
            ImageFormat::WebP if self.animated => self.pixels() * 8,
            ImageFormat::WebP => self.pixels() * 6,
            ImageFormat::Png | ImageFormat::Avif => 0,
        }
    }

    /// Bytes libjpeg allocates for full-image coefficient buffers when decoding this image:
    /// for a progressive or multi-scan JPEG, 2 bytes × 64 coefficients for every 8×8 block
    /// of every component, each component padded to whole MCUs (as `jdcoefct.c` requests
    /// them), at any output scale. 0 for a single-scan JPEG and for PNG. A 50 MP 4:4:4
    /// progressive file needs 300 MB; 4:2:0, 150 MB.
    pub fn coefficient_bytes(&self) -> u64 {
        let Some(layout) = &self.jpeg else { return 0 };
        if !layout.multi_scan || layout.sampling.is_empty() {
            return 0;
        }
        let max_h = layout
            .sampling
            .iter()
            .map(|s| u64::from(s.0))
            .max()
            .unwrap_or(1)
            .max(1);
        let max_v = layout
            .sampling
            .iter()
            .map(|s| u64::from(s.1))
            .max()
            .unwrap_or(1)
            .max(1);
        let (w, h) = (u64::from(self.stored_width), u64::from(self.stored_height));
        layout
            .sampling
            .iter()
            .map(|&(hs, vs)| {
                let (hs, vs) = (u64::from(hs).max(1), u64::from(vs).max(1));
                let wb = (w * hs).div_ceil(max_h * 8).next_multiple_of(hs);
                let hb = (h * vs).div_ceil(max_v * 8).next_multiple_of(vs);
                wb * hb * 128
            })
            .sum()
    }
}

/// Reads the header of a PNG, JPEG, WebP or GIF, whichever formats are accepted: see
/// [`Limits::probe`](crate::Limits::probe) for the probe that refuses formats not accepted.
/// Errors: [`Error::InvalidFormat`] for other bytes and unsupported JPEG flavours (lossless,
/// 12-bit), [`Error::Corrupt`] for a damaged header. Limits are not checked here: see
/// [`Limits::check`](crate::Limits::check).
pub fn probe(bytes: &[u8]) -> Result<ImageInfo> {
    match ImageFormat::sniff(bytes) {
        Some(ImageFormat::Png) => probe_png(bytes),
        Some(ImageFormat::Jpeg) => probe_jpeg(bytes),
        Some(ImageFormat::Gif) => gif::probe(bytes),
        Some(ImageFormat::WebP) => webp::probe(bytes),
        Some(ImageFormat::Avif) | None => Err(not_an_image(InputFormats::ALL)),
    }
}

pub(super) fn info(
    format: ImageFormat,
    w: u32,
    h: u32,
    orientation: Orientation,
    progressive: bool,
    channels: u8,
    jpeg: Option<JpegLayout>,
) -> ImageInfo {
    let (width, height) = if orientation.swaps_axes() {
        (h, w)
    } else {
        (w, h)
    };
    ImageInfo {
        format,
        width,
        height,
        stored_width: w,
        stored_height: h,
        orientation,
        progressive,
        channels,
        jpeg,
        animated: false,
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn probe_png(bytes: &[u8]) -> Result<ImageInfo> {
    let truncated = || Error::corrupt("PNG header is truncated");
    // Signature (8), then IHDR: length (4) "IHDR" (4) data (13) CRC (4).
    if be32(bytes, 8) != Some(13) || bytes.get(12..16) != Some(b"IHDR") {
        return Err(if bytes.len() < 33 {
            truncated()
        } else {
            Error::corrupt("PNG does not start with IHDR")
        });
    }
    let ihdr = bytes.get(16..29).ok_or_else(truncated)?;
    let (w, h) = (be32(ihdr, 0).unwrap_or(0), be32(ihdr, 4).unwrap_or(0));
    let (depth, color, interlace) = (ihdr[8], ihdr[9], ihdr[12]);
    if w == 0 || h == 0 || w > i32::MAX as u32 || h > i32::MAX as u32 {
        return Err(Error::corrupt(format!(
            "PNG declares an invalid size {w}×{h}"
        )));
    }
    let depth_ok = match color {
        0 => matches!(depth, 1 | 2 | 4 | 8 | 16),
        3 => matches!(depth, 1 | 2 | 4 | 8),
        2 | 4 | 6 => matches!(depth, 8 | 16),
        _ => false,
    };
    if !depth_ok || interlace > 1 {
        return Err(Error::corrupt(format!(
            "PNG declares colour type {color} with bit depth {depth}, interlace {interlace}"
        )));
    }
    // Look for eXIf among the chunks before the pixel data. Best effort: a chunk that runs
    // past the end stops the walk; decoding reports the damage properly.
    let mut orientation = Orientation::Normal;
    let mut transparency = false;
    let mut at = 33;
    while let (Some(len), Some(kind)) = (be32(bytes, at), bytes.get(at + 4..at + 8)) {
        let Some(data) = bytes.get(at + 8..(at + 8).saturating_add(len as usize)) else {
            break;
        };
        match kind {
            b"eXIf" => orientation = Orientation::from_exif_block(data),
            // png 0.18 panics expanding a palette whose length is not a multiple of 3
            // (found by the fuzz target); the PNG spec makes such a file invalid anyway.
            b"PLTE" if len == 0 || len % 3 != 0 || len > 768 => {
                return Err(Error::corrupt(format!(
                    "PNG palette is {len} bytes; it must be 3 to 768 bytes, a multiple of 3"
                )));
            }
            b"tRNS" => transparency = true,
            b"IDAT" | b"IEND" => break,
            _ => {}
        }
        at += 12 + len as usize;
    }
    let channels = match color {
        0 => 1,
        4 => 2,
        2 | 3 => 3,
        _ => 4,
    } + u8::from(transparency && matches!(color, 0 | 2 | 3));
    Ok(info(
        ImageFormat::Png,
        w,
        h,
        orientation,
        interlace == 1,
        channels,
        None,
    ))
}

fn probe_jpeg(bytes: &[u8]) -> Result<ImageInfo> {
    let truncated = || Error::corrupt("JPEG header is truncated");
    let mut at = 2;
    let mut orientation = Orientation::Normal;
    loop {
        // Markers are 0xFF followed by a code; 0xFF fill bytes may precede the code.
        if *bytes.get(at).ok_or_else(truncated)? != 0xFF {
            return Err(Error::corrupt(format!(
                "expected a JPEG marker at byte {at}"
            )));
        }
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *bytes.get(at).ok_or_else(truncated)?;
        at += 1;
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xD9 | 0xDA => return Err(Error::corrupt("JPEG has no frame header before its data")),
            _ => {}
        }
        let len = usize::from(be16(bytes, at).ok_or_else(truncated)?);
        if len < 2 {
            return Err(Error::corrupt("JPEG segment with invalid length"));
        }
        let seg = bytes.get(at + 2..at + len).ok_or_else(truncated)?;
        match marker {
            0xE1 if seg.starts_with(b"Exif\0\0") => {
                orientation = Orientation::from_exif_block(&seg[6..]);
            }
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if matches!(marker, 0xC3 | 0xC7 | 0xCB | 0xCF) {
                    return Err(Error::InvalidFormat(
                        "lossless JPEG is not supported".into(),
                    ));
                }
                if seg.len() < 6 {
                    return Err(truncated());
                }
                if seg[0] != 8 {
                    return Err(Error::InvalidFormat(format!(
                        "{}-bit JPEG is not supported: only 8-bit samples",
                        seg[0]
                    )));
                }
                let h = u32::from(be16(seg, 1).unwrap_or(0));
                let w = u32::from(be16(seg, 3).unwrap_or(0));
                if w == 0 || h == 0 {
                    return Err(Error::corrupt(format!(
                        "JPEG declares an invalid size {w}×{h}"
                    )));
                }
                let progressive = matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE);
                let components = usize::from(seg[5]);
                let sampling: Vec<(u8, u8)> = seg
                    .get(6..6 + 3 * components)
                    .unwrap_or_default()
                    .chunks_exact(3)
                    .map(|c| (c[1] >> 4, c[1] & 0x0F))
                    .collect();
                let multi_scan = progressive
                    || first_scan_components(bytes, at + len)
                        .is_none_or(|n| usize::from(n) < components);
                let channels = u8::try_from(components.clamp(1, 4)).unwrap_or(4);
                // EXIF comes before the frame header in every writer we know of; one that
                // put it later would simply be treated as upright.
                return Ok(info(
                    ImageFormat::Jpeg,
                    w,
                    h,
                    orientation,
                    progressive,
                    channels,
                    Some(JpegLayout {
                        sampling,
                        multi_scan,
                    }),
                ));
            }
            _ => {}
        }
        at += len;
    }
}

/// The number of components in the first scan header (SOS) after byte `at`, walking the
/// marker segments between the frame header and it; `None` when it cannot be found.
fn first_scan_components(bytes: &[u8], mut at: usize) -> Option<u8> {
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        while bytes.get(at) == Some(&0xFF) {
            at += 1;
        }
        let marker = *bytes.get(at)?;
        at += 1;
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xD9 => return None,
            _ => {}
        }
        let len = usize::from(be16(bytes, at)?);
        if marker == 0xDA {
            return bytes.get(at + 2).copied();
        }
        if len < 2 {
            return None;
        }
        at += len;
    }
}
