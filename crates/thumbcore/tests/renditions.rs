//! Sets of renditions (`Thumbnailer::render`): every size and format from one decode,
//! upright, and as good as each made on its own.

// Test patterns are made by deliberately wrapping arithmetic into u8.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

mod common;

use common::*;
use thumbcore::{ImageFormat, Profile, Rendition, ThumbSpec, Thumbnailer, probe};

fn renditions(list: &str) -> Vec<Rendition> {
    Profile::parse("test", list).unwrap().renditions
}

#[test]
fn a_set_has_every_size_and_format_asked_in_order() {
    let jpeg = jpeg_rgb(2000, 1500, &photo(2000, 1500));
    let asked = renditions("80:webp,160:webp,330:webp,330:png,160:jpeg:70,120x40:png");
    let set = Thumbnailer::new()
        .render(&jpeg, &ThumbSpec::default(), &asked)
        .unwrap();
    assert_eq!(set.renditions.len(), asked.len());
    assert_eq!((set.source.width, set.source.height), (2000, 1500));
    let expected = [
        ((80, 60), ImageFormat::WebP),
        ((160, 120), ImageFormat::WebP),
        ((330, 248), ImageFormat::WebP),
        ((330, 248), ImageFormat::Png),
        ((160, 120), ImageFormat::Jpeg),
        ((53, 40), ImageFormat::Png),
    ];
    for ((made, asked), (size, format)) in set.renditions.iter().zip(&asked).zip(expected) {
        assert_eq!(made.rendition, *asked);
        assert_eq!((made.width, made.height), size, "{asked}");
        // What the bytes say, not what the struct says.
        let info = probe(&made.bytes).unwrap();
        assert_eq!(
            (info.width, info.height, info.format),
            (size.0, size.1, format),
            "{asked}"
        );
    }
    assert!(!set.placeholder.thumbhash.is_empty());
}

/// Colours at stored corners: red top-left, green top-right, blue elsewhere.
fn corners(w: usize, h: usize) -> Vec<u8> {
    rgb_image(w, h, |x, y| match (x < w / 4, x >= w * 3 / 4, y < h / 4) {
        (true, _, true) => [255, 0, 0],
        (_, true, true) => [0, 255, 0],
        _ => [0, 0, 255],
    })
}

#[test]
fn every_size_of_a_rotated_image_is_upright() {
    // EXIF 6: the stored top-left (red) ends up top-right, the stored top-right (green)
    // bottom-right; 640×480 stored is 480×640 upright.
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(exif_orientation(6));
    let bytes = jpeg(
        640,
        480,
        jpeg_encoder::ColorType::Rgb,
        &corners(640, 480),
        false,
        &[(1, app1)],
        None,
    );
    // 80 and 160 are cascaded from the larger sizes: orientation must not be applied twice.
    let set = Thumbnailer::new()
        .render(
            &bytes,
            &ThumbSpec::default(),
            &renditions("80:png,160:png,330:png"),
        )
        .unwrap();
    for (made, size) in set
        .renditions
        .iter()
        .zip([(60, 80), (120, 160), (248, 330)])
    {
        assert_eq!((made.width, made.height), size);
        let d = decode_png(&made.bytes);
        assert_eq!((d.width, d.height), (size.0 as usize, size.1 as usize));
        let at = |x: usize, y: usize| d.mean(x - 1, y - 1, x + 2, y + 2);
        let (w, h) = (d.width, d.height);
        let what = format!("{}×{}", w, h);
        assert_close(
            at(w - 1 - w / 16, h / 16),
            [255.0, 0.0, 0.0],
            50.0,
            &format!("{what} red top-right"),
        );
        assert_close(
            at(w - 1 - w / 16, h - 1 - h / 16),
            [0.0, 255.0, 0.0],
            50.0,
            &format!("{what} green bottom-right"),
        );
        assert_close(
            at(w / 16, h / 16),
            [0.0, 0.0, 255.0],
            50.0,
            &format!("{what} blue top-left"),
        );
    }
}

/// Mean absolute difference of two decoded images of one size, per sample.
fn difference(a: &Decoded, b: &Decoded) -> f64 {
    assert_eq!(
        (a.width, a.height, a.channels),
        (b.width, b.height, b.channels)
    );
    let total: u64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.data.len() as f64
}

#[test]
fn a_size_cascaded_from_a_larger_one_looks_like_one_made_alone() {
    let jpeg = jpeg_rgb(2000, 1500, &photo(2000, 1500));
    let spec = ThumbSpec::default();
    let set = Thumbnailer::new()
        .render(&jpeg, &spec, &renditions("80:png,160:png,330:png"))
        .unwrap();
    for (made, alone) in set.renditions.iter().zip(["80:png", "160:png", "330:png"]) {
        let single = Thumbnailer::new()
            .render(&jpeg, &spec, &renditions(alone))
            .unwrap();
        let d = difference(
            &decode_png(&made.bytes),
            &decode_png(&single.renditions[0].bytes),
        );
        // Resizing twice filters twice: a little softer, never another picture.
        assert!(d < 3.0, "{alone}: differs by {d:.2} per sample");
    }
}

fn is_avif(bytes: &[u8]) -> bool {
    bytes.get(4..12) == Some(b"ftypavif")
}

#[test]
fn avif_renditions_can_be_encoded_later_from_their_exact_pixels() {
    let jpeg = jpeg_rgb(1200, 900, &photo(1200, 900));
    let spec = ThumbSpec::default();
    let asked = renditions("80:avif,160:avif:50,160:webp,330:png");
    let now = Thumbnailer::new().render(&jpeg, &spec, &asked).unwrap();
    let later = Thumbnailer::new()
        .render_deferring_avif(&jpeg, &spec, &asked)
        .unwrap();
    for (made, deferred) in now.renditions.iter().zip(&later.renditions) {
        let avif = made.rendition.output.format == ImageFormat::Avif;
        assert_eq!(deferred.deferred, avif, "{}", made.rendition);
        if !avif {
            assert_eq!(made.bytes, deferred.bytes, "{}", made.rendition);
            continue;
        }
        assert!(is_avif(&made.bytes), "{}", made.rendition);
        // The deferred source is a PNG of the rendition's own size…
        assert_eq!(
            dimensions(&deferred.bytes),
            (made.width, made.height),
            "{}",
            made.rendition
        );
        // …and encoding it later gives the very AVIF made at once.
        let (encoded, _) =
            Thumbnailer::encode_deferred(&deferred.bytes, made.rendition.output, &spec).unwrap();
        assert_eq!(encoded, made.bytes, "{}", made.rendition);
    }
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let info = probe(bytes).unwrap();
    (info.width, info.height)
}

#[test]
fn the_byte_budget_holds_for_each_rendition() {
    let png = png_rgb(900, 900, &photo(900, 900));
    let spec = ThumbSpec {
        budget_bytes: Some(6_000),
        ..ThumbSpec::default()
    };
    let set = Thumbnailer::new()
        .render(
            &png,
            &spec,
            &renditions("100:png,330:png,330:jpeg,330:webp"),
        )
        .unwrap();
    for made in &set.renditions {
        assert!(
            made.bytes.len() <= 6_000 || made.budget == thumbcore::BudgetStep::Exceeded,
            "{}: {} bytes, {:?}",
            made.rendition,
            made.bytes.len(),
            made.budget
        );
        assert_ne!(
            made.budget,
            thumbcore::BudgetStep::Fits,
            "{}: 330 px of noise fits 6 kB?",
            made.rendition
        );
    }
}
