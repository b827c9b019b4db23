//! Every error code from each kind of bad input, and truncated inputs never panic.

// Test patterns are made by deliberately wrapping arithmetic into u8.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

mod common;

use common::*;
use thumbcore::{InputFormats, Limits, ThumbSpec, Thumbnailer, check_declared_type, probe};

fn code(bytes: &[u8], spec: &ThumbSpec) -> &'static str {
    match Thumbnailer::new().thumbnail(bytes, spec) {
        Ok(t) => panic!(
            "expected an error, got a {}×{} thumbnail",
            t.width, t.height
        ),
        Err(e) => e.code().as_str(),
    }
}

fn check(bytes: &[u8], expected: &str, what: &str) {
    assert_eq!(code(bytes, &ThumbSpec::default()), expected, "{what}");
}

/// A PNG signature and IHDR declaring `w`×`h`, with no pixel data at all.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]); // 8-bit RGB, CRC (wrong, unread)
    b
}

/// A JPEG whose SOF0 (or `sof`) declares `w`×`h` with `precision` bits.
fn jpeg_sof(sof: u8, precision: u8, w: u16, h: u16) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, sof, 0, 11, precision];
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&[1, 1, 0x11, 0]);
    b.extend_from_slice(&[0xFF, 0xD9]);
    b
}

#[test]
fn invalid_format() {
    check(b"", "InvalidThumbnailFormat", "empty");
    check(b"GIF89a\x01\0\x01\0", "InvalidThumbnailFormat", "GIF");
    check(
        b"RIFF\0\0\0\0WEBPVP8 ",
        "InvalidThumbnailFormat",
        "WebP input",
    );
    check(&[0u8; 1000], "InvalidThumbnailFormat", "zeros");
    check(
        &jpeg_sof(0xC3, 8, 200, 200),
        "InvalidThumbnailFormat",
        "lossless JPEG",
    );
    check(
        &jpeg_sof(0xC1, 12, 200, 200),
        "InvalidThumbnailFormat",
        "12-bit JPEG",
    );
    // Declared type vs bytes.
    let png = png_rgb(100, 100, &photo(100, 100));
    assert_eq!(
        check_declared_type("image/jpeg", &png, InputFormats::DEFAULT)
            .unwrap_err()
            .code(),
        "InvalidThumbnailFormat"
    );
    assert_eq!(
        check_declared_type("image/gif", &png, InputFormats::DEFAULT)
            .unwrap_err()
            .code(),
        "InvalidHeaderValue"
    );
}

#[test]
fn too_small_after_orientation() {
    check(
        &png_rgb(79, 200, &photo(79, 200)),
        "ThumbnailTooSmall",
        "79 wide PNG",
    );
    check(
        &jpeg_rgb(200, 79, &photo(200, 79)),
        "ThumbnailTooSmall",
        "79 high JPEG",
    );
    // 100×90 stored, turned 90°: 90×100 displayed. A 95-wide minimum refuses it only
    // because orientation is applied first.
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(exif_orientation(6));
    let turned = jpeg(
        100,
        90,
        jpeg_encoder::ColorType::Rgb,
        &photo(100, 90),
        false,
        &[(1, app1)],
        None,
    );
    let spec = ThumbSpec {
        limits: Limits {
            min_width: 95,
            min_height: 80,
            ..Limits::default()
        },
        ..ThumbSpec::default()
    };
    assert_eq!(code(&turned, &spec), "ThumbnailTooSmall");
    let upright = jpeg_rgb(100, 90, &photo(100, 90));
    assert!(Thumbnailer::new().thumbnail(&upright, &spec).is_ok());
}

#[test]
fn dimensions_too_large_from_the_header_alone() {
    // Headers that promise gigapixels, with no data: refused before any allocation.
    check(
        &png_header_only(100_000, 100_000),
        "ImageDimensionsTooLarge",
        "PNG 10 Gpx",
    );
    check(
        &png_header_only(7072, 7072),
        "ImageDimensionsTooLarge",
        "PNG just over 50 Mpx",
    );
    check(
        &jpeg_sof(0xC0, 8, 65535, 65535),
        "ImageDimensionsTooLarge",
        "JPEG 65535²",
    );
    check(
        &jpeg_sof(0xC2, 8, 10_000, 6_000),
        "ImageDimensionsTooLarge",
        "progressive 60 Mpx",
    );
    let info = probe(&png_header_only(7072, 7072)).unwrap();
    assert_eq!(info.pixels(), 7072 * 7072);
}

#[test]
fn input_too_large() {
    let spec = ThumbSpec {
        limits: Limits {
            max_input_bytes: 1000,
            ..Limits::default()
        },
        ..ThumbSpec::default()
    };
    assert_eq!(
        code(&png_rgb(200, 200, &photo(200, 200)), &spec),
        "RequestTooLarge"
    );
}

#[test]
fn corrupt_images() {
    let png = png_rgb(300, 300, &photo(300, 300));
    check(&png[..png.len() / 2], "CorruptImage", "truncated PNG");
    let mut bad_crc = png.clone();
    let idat = bad_crc.windows(4).position(|w| w == b"IDAT").unwrap();
    bad_crc[idat + 10] ^= 0xFF;
    check(&bad_crc, "CorruptImage", "damaged IDAT");
    check(
        &png_header_only(100, 100),
        "CorruptImage",
        "PNG without pixel data",
    );

    let jpg = jpeg_rgb(300, 300, &photo(300, 300));
    check(&jpg[..jpg.len() / 2], "CorruptImage", "truncated JPEG");
    check(
        &jpeg_sof(0xC0, 8, 100, 100),
        "CorruptImage",
        "JPEG without scan data",
    );
    check(&jpeg_sof(0xC0, 8, 0, 100), "CorruptImage", "JPEG 0 wide");
    check(
        &[0xFF, 0xD8, 0xFF, 0xE0, 0x00],
        "CorruptImage",
        "JPEG cut in a marker",
    );
}

/// Inputs the fuzz target found; each once crashed a decoder. `tests/data/fuzz/`.
#[test]
fn fuzz_findings() {
    // A 35-byte PLTE: png 0.18 panicked expanding it (index out of range).
    let plte = std::fs::read(data_dir().join("fuzz/png-plte-35-bytes.png")).unwrap();
    assert_eq!(code(&plte, &any_size()), "CorruptImage");
    assert_eq!(thumbcore::probe(&plte).unwrap_err().code(), "CorruptImage");
}

/// Cuts every test image at many points. A cut may only ever give a coded error (or, past
/// the pixel data, a thumbnail); never a panic. Cuts inside the first 90% must fail.
#[test]
fn truncation_sweep() {
    let px = photo(400, 300);
    let images: Vec<(&str, Vec<u8>)> = vec![
        ("png rgb", png_rgb(400, 300, &px)),
        (
            "png adam7",
            std::fs::read(data_dir().join("pngsuite/basi2c08.png")).unwrap(),
        ),
        ("jpeg baseline", jpeg_rgb(400, 300, &px)),
        (
            "jpeg progressive",
            jpeg(400, 300, jpeg_encoder::ColorType::Rgb, &px, true, &[], None),
        ),
        (
            "jpeg cmyk",
            std::fs::read(data_dir().join("jpeg/ycck.jpg")).unwrap(),
        ),
        (
            "png palette",
            std::fs::read(data_dir().join("pngsuite/basn3p08.png")).unwrap(),
        ),
    ];
    let spec = any_size();
    let known = [
        "InvalidThumbnailFormat",
        "CorruptImage",
        "ThumbnailTooSmall",
    ];
    let mut t = Thumbnailer::new();
    for (name, bytes) in &images {
        assert!(t.thumbnail(bytes, &spec).is_ok(), "{name} whole");
        let step = (bytes.len() / 400).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            match t.thumbnail(&bytes[..cut], &spec) {
                Err(e) => assert!(
                    known.contains(&e.code().as_str()),
                    "{name} cut at {cut}: {e:?}"
                ),
                Ok(_) => assert!(
                    cut * 10 >= bytes.len() * 9,
                    "{name} cut at {cut} of {} gave a thumbnail",
                    bytes.len()
                ),
            }
        }
    }
}
