//! Image makers shared by thumbcore's tests: every test builds the images it needs.
#![allow(dead_code, missing_docs)]

pub mod formats;
pub mod hostile;

use std::path::PathBuf;

use thumbcore::{Limits, ThumbSpec};

/// A decoded PNG thumbnail: size, channels per pixel and samples.
pub struct Decoded {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Decoded {
    /// The pixel at (x, y) as RGBA, whatever the channel layout.
    pub fn rgba(&self, x: usize, y: usize) -> [u8; 4] {
        let i = (y * self.width + x) * self.channels;
        let p = &self.data[i..i + self.channels];
        match self.channels {
            1 => [p[0], p[0], p[0], 255],
            2 => [p[0], p[0], p[0], p[1]],
            3 => [p[0], p[1], p[2], 255],
            _ => [p[0], p[1], p[2], p[3]],
        }
    }

    /// Mean RGB over a rectangle.
    pub fn mean(&self, x0: usize, y0: usize, x1: usize, y1: usize) -> [f64; 3] {
        let mut sum = [0f64; 3];
        let mut n = 0f64;
        for y in y0..y1 {
            for x in x0..x1 {
                let p = self.rgba(x, y);
                for c in 0..3 {
                    sum[c] += f64::from(p[c]);
                }
                n += 1.0;
            }
        }
        sum.map(|s| s / n)
    }
}

/// Decodes a PNG (as thumbcore writes them) with the png crate, expanding palettes.
pub fn decode_png(bytes: &[u8]) -> Decoded {
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().expect("thumbnail is a valid PNG");
    let mut data = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut data).unwrap();
    data.truncate(info.buffer_size());
    Decoded {
        width: info.width as usize,
        height: info.height as usize,
        channels: info.color_type.samples(),
        data,
    }
}

/// Writes a PNG of the given colour type; `exif` and `icc` become eXIf and iCCP chunks.
pub fn png(
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    exif: Option<Vec<u8>>,
    icc: Option<Vec<u8>>,
) -> Vec<u8> {
    let mut info = png::Info::with_size(w, h);
    info.color_type = color;
    info.bit_depth = depth;
    info.exif_metadata = exif.map(Into::into);
    info.icc_profile = icc.map(Into::into);
    let mut out = Vec::new();
    let enc = png::Encoder::with_info(&mut out, info).unwrap();
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(data).unwrap();
    writer.finish().unwrap();
    out
}

pub fn png_rgb(w: u32, h: u32, data: &[u8]) -> Vec<u8> {
    png(
        w,
        h,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        data,
        None,
        None,
    )
}

/// Encodes a JPEG with jpeg-encoder (quality 95); `app` segments are (number, payload).
pub fn jpeg(
    w: u16,
    h: u16,
    color: jpeg_encoder::ColorType,
    data: &[u8],
    progressive: bool,
    app: &[(u8, Vec<u8>)],
    icc: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 95);
    enc.set_progressive(progressive);
    for (nr, payload) in app {
        enc.add_app_segment(*nr, payload.clone()).unwrap();
    }
    if let Some(icc) = icc {
        enc.add_icc_profile(icc).unwrap();
    }
    enc.encode(data, w, h, color).unwrap();
    out
}

pub fn jpeg_rgb(w: u16, h: u16, data: &[u8]) -> Vec<u8> {
    jpeg(w, h, jpeg_encoder::ColorType::Rgb, data, false, &[], None)
}

/// A big-endian TIFF block with a single Orientation tag, as found in EXIF.
pub fn exif_orientation(value: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes()); // one IFD entry
    t.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_be_bytes()); // count
    t.extend_from_slice(&value.to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    t
}

/// RGB pixels of a `w`×`h` image where `f(x, y)` gives each pixel.
pub fn rgb_image(w: usize, h: usize, f: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .flat_map(|(x, y)| f(x, y))
        .collect()
}

/// A photo-like RGB image: smooth gradients plus fine detail, so compression has work.
pub fn photo(w: usize, h: usize) -> Vec<u8> {
    rgb_image(w, h, |x, y| {
        let n = ((x * 7919 + y * 104_729) % 31) as u8;
        [
            (x * 255 / w) as u8 ^ n,
            (y * 255 / h) as u8,
            ((x + y) % 256) as u8 ^ (n << 2),
        ]
    })
}

/// Limits that accept any size, to feed tiny test-suite images through the decoders.
pub fn any_size() -> ThumbSpec {
    ThumbSpec {
        limits: Limits {
            min_width: 1,
            min_height: 1,
            ..Limits::default()
        },
        ..ThumbSpec::default()
    }
}

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Asserts two colours are within `tol` per channel.
pub fn assert_close(actual: [f64; 3], expected: [f64; 3], tol: f64, what: &str) {
    for c in 0..3 {
        assert!(
            (actual[c] - expected[c]).abs() <= tol,
            "{what}: got {actual:?}, expected {expected:?} ± {tol}"
        );
    }
}
