//! Hostile inputs stay bounded: endless progressive scans, the time limit, decoder memory
//! counted from the header. The inputs are generated in `common/hostile.rs`.

// The shared test patterns wrap arithmetic into u8 on purpose.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

mod common;

use std::time::Duration;

use common::formats::{GifFrame, RED, gif, solid, webp_lossless};
use common::hostile;
use thumbcore::{InputFormats, Limits, ThumbSpec, Thumbnailer, probe};

fn spec_with_time(limit: Option<Duration>) -> ThumbSpec {
    ThumbSpec {
        limits: Limits {
            max_duration: limit,
            ..Limits::default()
        },
        ..ThumbSpec::default()
    }
}

#[test]
fn endless_progressive_scans_are_cut_off_as_corrupt() {
    // 48 MP, 3000 AC scans that libjpeg absorbs without calling its progress monitor.
    let jpeg = hostile::many_scan_jpeg(8000, 6000, 3000);
    assert!(jpeg.len() < 5 << 20, "{} bytes", jpeg.len());
    let info = probe(&jpeg).unwrap();
    assert!(info.progressive);
    let err = Thumbnailer::new()
        .thumbnail(&jpeg, &spec_with_time(None))
        .expect_err("3000 scans must be refused");
    assert_eq!(err.code(), "CorruptImage", "{err}");
    assert!(err.to_string().contains("scans"), "{err}");
}

#[test]
fn the_scan_cap_stops_reading_at_the_cap_not_after_the_last_scan() {
    // 3000 scans, then a second frame header: an error libjpeg would report on reaching it.
    // Stopped at the cap, the decoder never does (it used to absorb every scan first and
    // check the count only when it started to output).
    let mut jpeg = hostile::many_scan_jpeg(8000, 6000, 3000);
    jpeg.truncate(jpeg.len() - 2);
    jpeg.extend_from_slice(&[0xFF, 0xC2, 0, 11, 8, 0, 8, 0, 8, 1, 1, 0x11, 0, 0xFF, 0xD9]);
    let err = Thumbnailer::new()
        .thumbnail(&jpeg, &spec_with_time(None))
        .expect_err("3000 scans must be refused");
    assert_eq!(err.code(), "CorruptImage", "{err}");
    assert!(err.to_string().contains("more than 500 scans"), "{err}");
}

#[test]
fn a_few_scans_of_the_same_kind_still_decode() {
    // The generator makes valid files: under the cap the image decodes (gray, DC only).
    let jpeg = hostile::many_scan_jpeg(800, 600, 20);
    let thumb = Thumbnailer::new()
        .thumbnail(&jpeg, &ThumbSpec::default())
        .unwrap();
    assert_eq!((thumb.width, thumb.height), (330, 248));
}

#[test]
fn a_slow_jpeg_decode_stops_at_the_time_limit() {
    let jpeg = hostile::many_scan_jpeg(8000, 6000, 400);
    let err = Thumbnailer::new()
        .decode(&jpeg, &spec_with_time(Some(Duration::from_millis(1))))
        .expect_err("400 scans of 48 MP take longer than 1 ms");
    assert_eq!(err.code(), "ProcessingTimeout", "{err}");
    assert!(err.is_permanent());
}

#[test]
fn a_slow_png_decode_stops_at_the_time_limit() {
    let (w, h) = (6000u32, 6000u32);
    let png = common::png(
        w,
        h,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &vec![90u8; (w * h) as usize],
        None,
        None,
    );
    let err = Thumbnailer::new()
        .decode(&png, &spec_with_time(Some(Duration::from_millis(1))))
        .expect_err("36 MP take longer than 1 ms");
    assert_eq!(err.code(), "ProcessingTimeout", "{err}");
}

#[test]
fn slow_gif_and_webp_decodes_end_in_the_time_limit_error() {
    // Neither decoder can be interrupted: the deadline is checked around them, so a decode
    // that outlasts the limit ends in ProcessingTimeout, not in a thumbnail.
    let (w, h) = (4000u16, 3000u16);
    let samples = [
        gif(w, h, &[GifFrame::solid(0, 0, w, h, RED)], None),
        webp_lossless(
            u32::from(w),
            u32::from(h),
            &solid(usize::from(w), usize::from(h), [9, 99, 199]),
        ),
    ];
    for bytes in samples {
        let mut spec = spec_with_time(Some(Duration::from_millis(1)));
        spec.limits.accept_formats = InputFormats::ALL;
        let err = Thumbnailer::new()
            .decode(&bytes, &spec)
            .expect_err("12 MP take longer than 1 ms");
        assert_eq!(err.code(), "ProcessingTimeout", "{err}");
        spec.limits.max_duration = None;
        assert!(Thumbnailer::new().decode(&bytes, &spec).is_ok());
    }
}

#[test]
fn the_size_budget_ladder_stops_at_the_time_limit() {
    let img = common::photo(600, 400);
    let png = common::png_rgb(600, 400, &img);
    let mut t = Thumbnailer::new();
    let frame = t.decode(&png, &spec_with_time(None)).unwrap();
    let frame = t.resize(frame).unwrap();
    // A budget nothing meets sends the encoder down the ladder; with no time left it stops
    // after the first encoding instead of trying the rest.
    let spec = ThumbSpec {
        budget_bytes: Some(1),
        ..spec_with_time(Some(Duration::ZERO))
    };
    let err = Thumbnailer::encode(frame, &spec).expect_err("no time for the ladder");
    assert_eq!(err.code(), "ProcessingTimeout", "{err}");
}

#[test]
fn the_default_time_limit_is_30_seconds() {
    assert_eq!(
        Limits::default().max_duration,
        Some(Duration::from_secs(30))
    );
}

#[test]
fn decode_cost_counts_the_coefficients_of_a_progressive_444_file() {
    let info = probe(&hostile::progressive_444_header(7000, 7000)).unwrap();
    let layout = info.jpeg.as_ref().unwrap();
    assert_eq!(layout.sampling, vec![(1, 1); 3]);
    assert!(layout.multi_scan);
    // 875 × 875 blocks × 3 components × 64 coefficients × 2 bytes.
    let coefficients = 875 * 875 * 3 * 128;
    assert_eq!(info.coefficient_bytes(), coefficients);
    let spec = ThumbSpec::default();
    assert!(spec.decode_cost(&info) >= coefficients);
    // … far more than the DCT-reduced output alone.
    assert!(spec.decoded_pixels(&info) * 4 < coefficients / 50);
}

#[test]
fn a_single_scan_baseline_file_costs_its_output_only() {
    let img = common::photo(1600, 1200);
    let jpeg = common::jpeg_rgb(1600, 1200, &img);
    let info = probe(&jpeg).unwrap();
    assert!(!info.jpeg.as_ref().unwrap().multi_scan);
    assert_eq!(info.coefficient_bytes(), 0);
    let spec = ThumbSpec::default();
    // 1/2 scale (1/4 would leave less than twice the 330×248 output): 800×600 RGB, plus
    // the resizer's intermediate rows.
    assert_eq!(spec.decoded_pixels(&info), 800 * 600);
    assert!(spec.decode_cost(&info) < 800 * 600 * 3 * 2);
    // In linear light the resizer also holds a 16-bit copy.
    let linear = ThumbSpec {
        resize_space: thumbcore::ResizeSpace::Linear,
        ..ThumbSpec::default()
    };
    assert!(linear.decode_cost(&info) >= 800 * 600 * 3 * 3);
}

#[test]
fn a_baseline_file_in_several_scans_counts_its_coefficients() {
    // The header of a sequential 4:4:4 file whose first scan holds one component of three:
    // libjpeg buffers the whole image, as for a progressive one.
    let mut jpeg = hostile::progressive_444_header(2000, 1000);
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC2]).unwrap();
    jpeg[sof + 1] = 0xC0;
    let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    jpeg.truncate(sos);
    jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0]);
    let info = probe(&jpeg).unwrap();
    assert!(!info.progressive);
    assert!(info.jpeg.as_ref().unwrap().multi_scan);
    assert_eq!(info.coefficient_bytes(), 250 * 125 * 3 * 128);
}

#[test]
fn a_big_progressive_444_file_decodes() {
    // 49 MP in about 0.5 MB: libjpeg holds 294 MB of coefficients, within the default bound.
    let jpeg = hostile::progressive_444_jpeg(7000, 7000);
    assert!(jpeg.len() < 5 << 20, "{} bytes", jpeg.len());
    let thumb = Thumbnailer::new()
        .thumbnail(&jpeg, &ThumbSpec::default())
        .unwrap();
    assert_eq!((thumb.width, thumb.height), (330, 330));
}
