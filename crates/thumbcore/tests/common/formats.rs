//! GIF and WebP makers: files written on the spot with the `gif` crate, image-webp
//! (lossless) and libwebp (lossy), and WebP containers (VP8X, EXIF, animation) assembled
//! by hand around them.

// Test images are built by deliberately narrowing arithmetic.
#![allow(clippy::cast_possible_truncation)]

use std::borrow::Cow;

/// The 6×6×6 colour cube: index `36 r + 6 g + b` for levels 0–5 (× 51).
pub fn cube() -> Vec<u8> {
    (0..216u32)
        .flat_map(|i| [i / 36, i / 6 % 6, i % 6].map(|l| (l * 51) as u8))
        .collect()
}

/// The cube index nearest to an RGB colour.
pub fn cube_index(rgb: [u8; 3]) -> u8 {
    let l = |c: u8| (u32::from(c) + 25) / 51;
    (l(rgb[0]) * 36 + l(rgb[1]) * 6 + l(rgb[2])) as u8
}

/// Cube index of pure red, green and blue.
pub const RED: u8 = 180;
pub const BLUE: u8 = 5;

/// One GIF frame: position, size and indices (one per pixel).
pub struct GifFrame {
    pub left: u16,
    pub top: u16,
    pub width: u16,
    pub height: u16,
    pub indices: Vec<u8>,
}

impl GifFrame {
    /// A frame of one colour.
    pub fn solid(left: u16, top: u16, width: u16, height: u16, index: u8) -> Self {
        GifFrame {
            left,
            top,
            width,
            height,
            indices: vec![index; usize::from(width) * usize::from(height)],
        }
    }
}

/// A GIF on a `w`×`h` screen with the cube as its palette; index `transparent` (if any) is
/// transparent in every frame.
pub fn gif(w: u16, h: u16, frames: &[GifFrame], transparent: Option<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut out, w, h, &cube()).unwrap();
        for f in frames {
            let frame = gif::Frame {
                left: f.left,
                top: f.top,
                width: f.width,
                height: f.height,
                buffer: Cow::Borrowed(&f.indices),
                transparent,
                ..gif::Frame::default()
            };
            enc.write_frame(&frame).unwrap();
        }
    }
    out
}

/// A one-frame GIF of an RGB image, mapped to the cube.
pub fn gif_rgb(w: u16, h: u16, rgb: &[u8]) -> Vec<u8> {
    let indices = rgb
        .chunks_exact(3)
        .map(|c| cube_index([c[0], c[1], c[2]]))
        .collect();
    gif(
        w,
        h,
        &[GifFrame {
            left: 0,
            top: 0,
            width: w,
            height: h,
            indices,
        }],
        None,
    )
}

/// A lossless WebP (simple `VP8L` file) written by image-webp.
pub fn webp_lossless(w: u32, h: u32, rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(rgb, w, h, image_webp::ColorType::Rgb8)
        .unwrap();
    out
}

/// A lossy WebP (simple `VP8 ` file) written by libwebp at quality 80.
pub fn webp_lossy(w: u32, h: u32, rgb: &[u8]) -> Vec<u8> {
    webp::Encoder::from_rgb(rgb, w, h).encode(80.0).to_vec()
}

/// A RIFF chunk: fourcc, little-endian length, data, padding to an even length.
pub fn chunk(fourcc: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = fourcc.to_vec();
    c.extend_from_slice(&(data.len() as u32).to_le_bytes());
    c.extend_from_slice(data);
    if data.len() % 2 == 1 {
        c.push(0);
    }
    c
}

/// A WebP file of these chunks.
pub fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut f = b"RIFF".to_vec();
    f.extend_from_slice(&(body.len() as u32 + 4).to_le_bytes());
    f.extend_from_slice(b"WEBP");
    f.extend_from_slice(&body);
    f
}

fn le24(v: u32) -> [u8; 3] {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// The `VP8X` chunk: flags (0x10 alpha, 0x08 EXIF, 0x02 animation) and the canvas size.
pub fn vp8x(flags: u8, w: u32, h: u32) -> Vec<u8> {
    let mut d = vec![flags, 0, 0, 0];
    d.extend_from_slice(&le24(w - 1));
    d.extend_from_slice(&le24(h - 1));
    chunk(b"VP8X", &d)
}

/// The image chunk of a simple WebP file (`VP8 ` or `VP8L`, with its header).
pub fn image_chunk(simple: &[u8]) -> Vec<u8> {
    simple[12..].to_vec()
}

/// An extended WebP: `simple`'s image with an `EXIF` chunk (a TIFF block).
pub fn webp_with_exif(w: u32, h: u32, simple: &[u8], tiff: &[u8]) -> Vec<u8> {
    riff(&[vp8x(0x08, w, h), image_chunk(simple), chunk(b"EXIF", tiff)])
}

/// An animated WebP of full-canvas frames, each a simple WebP file's image.
pub fn webp_animated(w: u32, h: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut chunks = vec![vp8x(0x02, w, h), chunk(b"ANIM", &[0, 0, 0, 0, 0, 0])];
    for f in frames {
        let mut d = Vec::new();
        d.extend_from_slice(&le24(0)); // x / 2
        d.extend_from_slice(&le24(0)); // y / 2
        d.extend_from_slice(&le24(w - 1));
        d.extend_from_slice(&le24(h - 1));
        d.extend_from_slice(&le24(100)); // duration, ms
        d.push(0); // blend, no dispose
        d.extend_from_slice(&image_chunk(f));
        chunks.push(chunk(b"ANMF", &d));
    }
    riff(&chunks)
}

/// RGB pixels of one colour.
pub fn solid(w: usize, h: usize, rgb: [u8; 3]) -> Vec<u8> {
    rgb.iter().copied().cycle().take(w * h * 3).collect()
}
