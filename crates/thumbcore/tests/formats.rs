//! WebP and GIF inputs (opt-in through `Limits::accept_formats`) and lossy WebP output:
//! decoding, sizes from the header, limits before decoding, the animated flag, EXIF
//! orientation, and damaged files giving coded errors. Every sample is made here.

// Test patterns wrap arithmetic into u8 on purpose.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

mod common;

use common::formats::*;
use common::*;
use thumbcore::{BudgetStep, ImageFormat, InputFormats, Limits, ThumbSpec, Thumbnailer, probe};

/// The default spec, accepting `formats`.
fn accepting(formats: &str) -> ThumbSpec {
    ThumbSpec {
        limits: Limits {
            accept_formats: formats.parse().unwrap(),
            ..Limits::default()
        },
        ..ThumbSpec::default()
    }
}

fn all() -> ThumbSpec {
    accepting("png,jpeg,webp,gif")
}

/// A PNG thumbnail of `bytes` with every format accepted, decoded.
fn thumb(bytes: &[u8]) -> (thumbcore::Thumbnail, Decoded) {
    let t = Thumbnailer::new().thumbnail(bytes, &all()).unwrap();
    let d = decode_png(&t.bytes);
    (t, d)
}

fn photo_gif() -> Vec<u8> {
    gif_rgb(640, 480, &photo(640, 480))
}

#[test]
fn gif_and_webp_are_refused_unless_accepted() {
    let px = photo(640, 480);
    let samples = [
        photo_gif(),
        webp_lossless(640, 480, &px),
        webp_lossy(640, 480, &px),
    ];
    for bytes in &samples {
        // Exactly as before thumbd could read them.
        let err = Thumbnailer::new()
            .thumbnail(bytes, &ThumbSpec::default())
            .unwrap_err();
        assert_eq!(err.code(), "InvalidThumbnailFormat");
        assert_eq!(
            err.to_string(),
            "the bytes are neither a PNG nor a JPEG image"
        );
        let err = Limits::default().probe(bytes).unwrap_err();
        assert_eq!(err.code(), "InvalidThumbnailFormat");
        // The plain probe reads every format; the limits still refuse it.
        let info = probe(bytes).unwrap();
        assert_eq!(
            Limits::default().check(&info).unwrap_err().code(),
            "InvalidThumbnailFormat"
        );
    }
    // Each format only when named.
    let gif_only = accepting("png,gif");
    assert!(Thumbnailer::new().thumbnail(&samples[0], &gif_only).is_ok());
    let err = Thumbnailer::new()
        .thumbnail(&samples[1], &gif_only)
        .unwrap_err();
    assert_eq!(err.code(), "InvalidThumbnailFormat");
    assert_eq!(
        err.to_string(),
        "the bytes are neither a PNG nor a GIF image"
    );
    assert!(
        Thumbnailer::new()
            .thumbnail(&samples[1], &accepting("webp"))
            .is_ok()
    );
    assert_eq!(
        thumbcore::check_declared_type("image/webp", &samples[1], gif_only.limits.accept_formats)
            .unwrap_err()
            .code(),
        "InvalidHeaderValue"
    );
}

#[test]
fn a_gif_decodes_its_first_frame_on_the_screen() {
    // A red quarter at the bottom right of a transparent 400×300 screen, then a blue frame.
    let bytes = gif(
        400,
        300,
        &[
            GifFrame::solid(200, 150, 200, 150, RED),
            GifFrame::solid(0, 0, 400, 300, BLUE),
        ],
        None,
    );
    let info = probe(&bytes).unwrap();
    assert_eq!(
        (info.format, info.width, info.height),
        (ImageFormat::Gif, 400, 300)
    );
    assert!(info.animated);
    let (t, d) = thumb(&bytes);
    assert_eq!((t.width, t.height), (330, 248));
    assert!(t.source.animated);
    assert_eq!(d.rgba(60, 60)[3], 0, "outside the first frame: transparent");
    assert_eq!(
        d.rgba(280, 200),
        [255, 0, 0, 255],
        "the first frame, not the second"
    );
}

#[test]
fn a_still_gif_is_not_animated_and_looks_like_its_source() {
    let px = photo(640, 480);
    let bytes = gif_rgb(640, 480, &px);
    let (t, d) = thumb(&bytes);
    assert!(!t.source.animated && !probe(&bytes).unwrap().animated);
    assert_eq!(
        (d.width, d.height, d.channels),
        (330, 248, 3),
        "opaque: no alpha"
    );
    let reference = decode_png(
        &Thumbnailer::new()
            .thumbnail(&png_rgb(640, 480, &px), &ThumbSpec::default())
            .unwrap()
            .bytes,
    );
    // The cube's levels are 51 apart: means over a block stay within half a step.
    for (x, y) in [(10, 10), (150, 100), (300, 220)] {
        assert_close(
            d.mean(x, y, x + 20, y + 20),
            reference.mean(x, y, x + 20, y + 20),
            26.0,
            "GIF vs PNG thumbnail",
        );
    }
    // A transparent index makes an image with alpha.
    let holes = gif(
        200,
        200,
        &[GifFrame {
            left: 0,
            top: 0,
            width: 200,
            height: 200,
            indices: (0..40_000)
                .map(|i| if i % 2 == 0 { RED } else { 0 })
                .collect(),
        }],
        Some(0),
    );
    let (_, d) = thumb(&holes);
    assert_eq!(d.channels, 4);
    // 200×200 fits the box: never upscaled, so pixels stay as they are.
    assert_eq!(d.rgba(100, 100), [255, 0, 0, 255]);
    assert_eq!(d.rgba(101, 100)[3], 0);
}

#[test]
fn webp_lossless_and_lossy_decode() {
    let px = photo(640, 480);
    let reference = decode_png(
        &Thumbnailer::new()
            .thumbnail(&png_rgb(640, 480, &px), &ThumbSpec::default())
            .unwrap()
            .bytes,
    );
    for (bytes, tol) in [
        (webp_lossless(640, 480, &px), 1.0),
        (webp_lossy(640, 480, &px), 12.0),
    ] {
        let info = probe(&bytes).unwrap();
        assert_eq!((info.width, info.height, info.channels), (640, 480, 3));
        assert!(!info.animated);
        let (t, d) = thumb(&bytes);
        assert_eq!((t.width, t.height), (330, 248));
        for (x, y) in [(10, 10), (150, 100), (300, 220)] {
            assert_close(
                d.mean(x, y, x + 20, y + 20),
                reference.mean(x, y, x + 20, y + 20),
                tol,
                "WebP vs PNG thumbnail",
            );
        }
    }
}

#[test]
fn webp_exif_orientation_is_applied() {
    // 400×200 stored, orientation 6 (rotate 90° clockwise): 200×400 upright.
    let px = rgb_image(
        400,
        200,
        |x, _| if x < 200 { [255, 0, 0] } else { [0, 0, 255] },
    );
    for tiff in [
        exif_orientation(6),
        [b"Exif\0\0".as_slice(), &exif_orientation(6)].concat(),
    ] {
        let bytes = webp_with_exif(400, 200, &webp_lossless(400, 200, &px), &tiff);
        let info = probe(&bytes).unwrap();
        assert_eq!((info.width, info.height), (200, 400));
        assert_eq!((info.stored_width, info.stored_height), (400, 200));
        let (t, d) = thumb(&bytes);
        assert_eq!((t.width, t.height), (165, 330));
        // The left (red) half of the stored image is the top once rotated clockwise.
        assert_eq!(&d.rgba(80, 40)[..3], &[255, 0, 0]);
        assert_eq!(&d.rgba(80, 290)[..3], &[0, 0, 255]);
    }
}

#[test]
fn an_animated_webp_shows_its_first_frame_and_says_so() {
    let red = webp_lossless(300, 200, &solid(300, 200, [255, 0, 0]));
    let blue = webp_lossless(300, 200, &solid(300, 200, [0, 0, 255]));
    let bytes = webp_animated(300, 200, &[red.clone(), blue]);
    let info = probe(&bytes).unwrap();
    assert!(info.animated);
    let (t, d) = thumb(&bytes);
    assert!(t.source.animated);
    assert_eq!((t.width, t.height), (300, 200));
    // The decoder blends the frame onto its canvas (rounding: 254 or 255).
    let [r, g, b, _] = d.rgba(150, 100);
    assert!(r >= 250 && g <= 5 && b <= 5, "{:?}", [r, g, b]);
    // One frame flagged as an animation is not animated.
    let single = webp_animated(300, 200, &[red]);
    assert!(!probe(&single).unwrap().animated);
    assert!(!thumb(&single).0.source.animated);
}

#[test]
fn sizes_come_from_the_header_and_limits_refuse_before_decoding() {
    // Headers alone, no pixel data: a decode would fail as corrupt, the limits come first.
    let mut huge_gif = b"GIF89a".to_vec();
    huge_gif.extend_from_slice(&[0x20, 0x4E, 0x20, 0x4E, 0, 0, 0]); // 20000×20000
    let huge_vp8x = riff(&[vp8x(0, 16000, 16000)]);
    let mut huge_vp8l = webp_lossless(100, 100, &solid(100, 100, [9, 9, 9]));
    // 14 bits of width − 1 and height − 1 all set: 16384×16384.
    huge_vp8l[21..25].copy_from_slice(&(0x0FFF_FFFFu32).to_le_bytes());
    huge_vp8l.truncate(40);
    for bytes in [&huge_gif, &huge_vp8x, &huge_vp8l] {
        let info = probe(bytes).unwrap();
        assert!(info.pixels() > 50_000_000, "{info:?}");
        let err = Thumbnailer::new().thumbnail(bytes, &all()).unwrap_err();
        assert_eq!(err.code(), "ImageDimensionsTooLarge", "{err}");
    }
    let small = gif(50, 50, &[GifFrame::solid(0, 0, 50, 50, RED)], None);
    let err = Thumbnailer::new().thumbnail(&small, &all()).unwrap_err();
    assert_eq!(err.code(), "ThumbnailTooSmall");
}

#[test]
fn decode_cost_counts_the_decoders_buffers() {
    let spec = all();
    let gif = probe(&photo_gif()).unwrap();
    // The screen (RGBA), the frame's own buffer, the premultiplied copy.
    assert!(spec.decode_cost(&gif) >= 640 * 480 * 4 * 3);
    let px = photo(640, 480);
    let webp = probe(&webp_lossy(640, 480, &px)).unwrap();
    assert!(spec.decode_cost(&webp) >= 640 * 480 * (3 + 6));
    let animated = webp_animated(
        300,
        200,
        &[webp_lossless(300, 200, &solid(300, 200, [1, 2, 3]))],
    );
    let mut info = probe(&animated).unwrap();
    let still = spec.decode_cost(&info);
    info.animated = true;
    assert!(spec.decode_cost(&info) >= still + 300 * 200 * 2);
}

#[test]
fn a_gif_frame_larger_than_its_screen_is_corrupt() {
    let bytes = gif(100, 100, &[GifFrame::solid(0, 0, 200, 200, RED)], None);
    let err = Thumbnailer::new()
        .thumbnail(&bytes, &any_size_all())
        .unwrap_err();
    assert_eq!(err.code(), "CorruptImage", "{err}");
    // Partly off the screen but no larger: clipped.
    let bytes = gif(100, 100, &[GifFrame::solid(60, 60, 80, 80, RED)], None);
    let t = Thumbnailer::new()
        .thumbnail(&bytes, &any_size_all())
        .unwrap();
    let d = decode_png(&t.bytes);
    assert_eq!(d.rgba(80, 80), [255, 0, 0, 255]);
    assert_eq!(d.rgba(30, 30)[3], 0);
}

fn any_size_all() -> ThumbSpec {
    let mut spec = any_size();
    spec.limits.accept_formats = InputFormats::ALL;
    spec
}

/// Every prefix (finely near the start, where the headers are) and single-byte damage of
/// each sample gives a thumbnail or a coded error: never a panic.
#[test]
fn truncated_and_damaged_files_give_coded_errors() {
    const CODES: [&str; 4] = [
        "InvalidThumbnailFormat",
        "CorruptImage",
        "ThumbnailTooSmall",
        "ImageDimensionsTooLarge",
    ];
    let px = photo(200, 160);
    let frames = [
        webp_lossless(200, 160, &px),
        webp_lossless(200, 160, &solid(200, 160, [0, 0, 255])),
    ];
    let samples = [
        gif_rgb(200, 160, &px),
        gif(
            200,
            160,
            &[
                GifFrame::solid(10, 10, 100, 100, RED),
                GifFrame::solid(0, 0, 200, 160, BLUE),
            ],
            Some(0),
        ),
        frames[0].clone(),
        webp_lossy(200, 160, &px),
        webp_with_exif(200, 160, &frames[0], &exif_orientation(8)),
        webp_animated(200, 160, &frames),
    ];
    let spec = any_size_all();
    let mut t = Thumbnailer::new();
    let (mut ok, mut failed) = (0, 0);
    for sample in &samples {
        assert!(
            t.thumbnail(sample, &spec).is_ok(),
            "the intact sample decodes"
        );
        let cuts =
            (0..64.min(sample.len())).chain((64..sample.len()).step_by(sample.len() / 50 + 1));
        let flips = (0..sample.len()).step_by(sample.len() / 40 + 1).map(|at| {
            let mut damaged = sample.clone();
            damaged[at] ^= 0x5A;
            damaged
        });
        let inputs = cuts.map(|n| sample[..n].to_vec()).chain(flips);
        for input in inputs {
            match t.thumbnail(&input, &spec) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert!(CODES.contains(&e.code().as_str()), "{}: {e}", e.code());
                    failed += 1;
                }
            }
        }
    }
    assert!(failed > 300, "{ok} thumbnails, {failed} errors");
}

#[test]
fn webp_output_is_lossy_at_80_unless_asked_lossless() {
    let png = png_rgb(900, 700, &photo(900, 700));
    let spec = ThumbSpec {
        format: ImageFormat::WebP,
        budget_bytes: None,
        ..ThumbSpec::default()
    };
    assert_eq!(spec.webp_quality, Some(80));
    let lossy = Thumbnailer::new().thumbnail(&png, &spec).unwrap();
    let lossless = Thumbnailer::new()
        .thumbnail(
            &png,
            &ThumbSpec {
                webp_quality: None,
                ..spec.clone()
            },
        )
        .unwrap();
    assert_eq!(&lossy.bytes[12..16], b"VP8 ");
    assert_eq!(&lossless.bytes[12..16], b"VP8L");
    assert_eq!(lossy.content_type(), "image/webp");
    assert!(
        lossy.bytes.len() * 2 < lossless.bytes.len(),
        "lossy {} vs lossless {}",
        lossy.bytes.len(),
        lossless.bytes.len()
    );
    // The output decodes to the thumbnail's size; higher quality, more bytes.
    let (t, _) = thumb(&lossy.bytes);
    assert_eq!((t.width, t.height), (330, 257));
    let q95 = Thumbnailer::new()
        .thumbnail(
            &png,
            &ThumbSpec {
                webp_quality: Some(95),
                ..spec.clone()
            },
        )
        .unwrap();
    assert!(q95.bytes.len() > lossy.bytes.len());
}

#[test]
fn lossy_webp_lowers_its_quality_within_the_budget() {
    let noise: Vec<u8> = (0u32..600 * 600 * 3)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let png = png_rgb(600, 600, &noise);
    let run = |budget| {
        Thumbnailer::new()
            .thumbnail(
                &png,
                &ThumbSpec {
                    format: ImageFormat::WebP,
                    budget_bytes: budget,
                    ..ThumbSpec::default()
                },
            )
            .unwrap()
    };
    let free = run(None);
    assert_eq!(free.budget, BudgetStep::Fits);
    let lowered = run(Some(free.bytes.len() - 1));
    assert!(
        matches!(lowered.budget, BudgetStep::ReducedQuality { quality } if quality < 80),
        "{:?}",
        lowered.budget
    );
    assert!(lowered.bytes.len() < free.bytes.len());
    let impossible = run(Some(100));
    assert_eq!(impossible.budget, BudgetStep::Exceeded);
    assert!(
        impossible.bytes.len() < lowered.bytes.len(),
        "the smallest found"
    );
}
