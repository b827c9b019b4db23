//! The pipeline on images made here, asserting on output pixels and sizes.

// Test patterns are made by deliberately wrapping arithmetic into u8.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

mod common;

use common::*;
use thumbcore::{BudgetStep, ImageFormat, Orientation, ResizeSpace, ThumbSpec, Thumbnailer, probe};

fn thumb(bytes: &[u8]) -> thumbcore::Thumbnail {
    Thumbnailer::new()
        .thumbnail(bytes, &ThumbSpec::default())
        .expect("thumbnail")
}

#[test]
fn output_sizes_follow_the_fit_rule() {
    for ((w, h), expected) in [
        ((2000, 1500), (330, 248)),
        ((1000, 2000), (165, 330)),
        ((200, 100), (200, 100)),
        ((331, 80), (330, 80)),
    ] {
        let t = thumb(&png_rgb(w, h, &photo(w as usize, h as usize)));
        assert_eq!((t.width, t.height), expected, "{w}×{h}");
        let d = decode_png(&t.bytes);
        assert_eq!(
            (d.width as u32, d.height as u32),
            expected,
            "decoded {w}×{h}"
        );
    }
    let t = thumb(&jpeg_rgb(2000, 1500, &photo(2000, 1500)));
    assert_eq!((t.width, t.height), (330, 248));
}

/// Colours at stored corners: red top-left, green top-right, blue elsewhere.
fn corner_image(w: usize, h: usize) -> Vec<u8> {
    rgb_image(w, h, |x, y| match (x < w / 4, x >= w * 3 / 4, y < h / 4) {
        (true, _, true) => [255, 0, 0],
        (_, true, true) => [0, 255, 0],
        _ => [0, 0, 255],
    })
}

/// Which displayed corner the red and green marks must land in, for each EXIF value.
const CORNERS: [(u16, &str, &str); 8] = [
    (1, "TL", "TR"),
    (2, "TR", "TL"),
    (3, "BR", "BL"),
    (4, "BL", "BR"),
    (5, "TL", "BL"),
    (6, "TR", "BR"),
    (7, "BR", "TR"),
    (8, "BL", "TL"),
];

fn corner_colour(d: &Decoded, corner: &str) -> [f64; 3] {
    let (w, h) = (d.width, d.height);
    // The middle of that corner's eighth of the image: well inside the mark.
    let (cx, cy) = match corner {
        "TL" => (w / 16, h / 16),
        "TR" => (w - 1 - w / 16, h / 16),
        "BL" => (w / 16, h - 1 - h / 16),
        _ => (w - 1 - w / 16, h - 1 - h / 16),
    };
    d.mean(cx - 2, cy - 2, cx + 3, cy + 3)
}

fn check_orientation(bytes_for: impl Fn(Vec<u8>) -> Vec<u8>, what: &str) {
    for (value, red, green) in CORNERS {
        let bytes = bytes_for(exif_orientation(value));
        let info = probe(&bytes).unwrap();
        assert_eq!(info.orientation, Orientation::from_exif(u32::from(value)));
        let t = thumb(&bytes);
        // Stored 640×480 → 330×248 upright, or 248×330 when the axes swap.
        let expected = if value >= 5 { (248, 330) } else { (330, 248) };
        assert_eq!((t.width, t.height), expected, "{what} orientation {value}");
        assert_eq!(
            (info.width, info.height),
            if value >= 5 { (480, 640) } else { (640, 480) }
        );
        let d = decode_png(&t.bytes);
        let ctx = format!("{what} orientation {value}");
        assert_close(
            corner_colour(&d, red),
            [255.0, 0.0, 0.0],
            40.0,
            &format!("{ctx} red at {red}"),
        );
        assert_close(
            corner_colour(&d, green),
            [0.0, 255.0, 0.0],
            40.0,
            &format!("{ctx} green at {green}"),
        );
    }
}

#[test]
fn exif_orientation_in_jpeg_all_eight_values() {
    let pixels = corner_image(640, 480);
    check_orientation(
        |tiff| {
            let mut app1 = b"Exif\0\0".to_vec();
            app1.extend(tiff);
            jpeg(
                640,
                480,
                jpeg_encoder::ColorType::Rgb,
                &pixels,
                false,
                &[(1, app1)],
                None,
            )
        },
        "JPEG",
    );
}

#[test]
fn exif_orientation_in_png_all_eight_values() {
    let pixels = corner_image(640, 480);
    check_orientation(
        |tiff| {
            png(
                640,
                480,
                png::ColorType::Rgb,
                png::BitDepth::Eight,
                &pixels,
                Some(tiff),
                None,
            )
        },
        "PNG",
    );
}

#[test]
fn transparent_areas_stay_transparent_and_do_not_bleed() {
    // Left half: fully transparent *red*; right half: opaque blue. Without premultiplied
    // alpha, the red would bleed into the blue along the edge.
    let (w, h) = (660usize, 200usize);
    let data: Vec<u8> = (0..h)
        .flat_map(|_| {
            (0..w).map(|x| {
                if x < w / 2 {
                    [255, 0, 0, 0]
                } else {
                    [0, 0, 255, 255]
                }
            })
        })
        .flatten()
        .collect();
    let t = thumb(&png(
        w as u32,
        h as u32,
        png::ColorType::Rgba,
        png::BitDepth::Eight,
        &data,
        None,
        None,
    ));
    let d = decode_png(&t.bytes);
    assert_eq!((d.width, d.height, d.channels), (330, 100, 4));
    assert_eq!(d.rgba(10, 50)[3], 0, "left stays transparent");
    assert_eq!(d.rgba(320, 50), [0, 0, 255, 255], "right stays opaque blue");
    for x in 160..175 {
        let p = d.rgba(x, 50);
        if p[3] > 0 {
            assert!(p[0] < 8, "red bled into the edge at x={x}: {p:?}");
        }
    }
}

#[test]
fn palette_with_trns_keeps_transparency() {
    // Indexed 8-bit: index 0 transparent, index 1 opaque green; checkerboard of 40px.
    let (w, h) = (400u32, 400u32);
    let idx: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).map(move |x| u8::from((x / 200 + y / 200) % 2 == 1)))
        .collect();
    let mut info = png::Info::with_size(w, h);
    info.color_type = png::ColorType::Indexed;
    info.bit_depth = png::BitDepth::Eight;
    info.palette = Some(vec![9, 9, 9, 0, 200, 0].into());
    info.trns = Some(vec![0, 255].into());
    let mut bytes = Vec::new();
    let mut wr = png::Encoder::with_info(&mut bytes, info)
        .unwrap()
        .write_header()
        .unwrap();
    wr.write_image_data(&idx).unwrap();
    wr.finish().unwrap();
    let d = decode_png(&thumb(&bytes).bytes);
    assert_eq!(d.rgba(40, 40)[3], 0, "top-left quadrant transparent");
    assert_eq!(
        d.rgba(290, 40),
        [0, 200, 0, 255],
        "top-right quadrant opaque green"
    );
}

#[test]
fn sixteen_bit_and_gray_inputs() {
    // 16-bit RGB: value v becomes v >> 8.
    let (w, h) = (100u32, 100u32);
    let px16: Vec<u8> = (0..w * h)
        .flat_map(|_| [0x12, 0x34, 0xAB, 0xCD, 0xFF, 0xFF])
        .collect();
    let d = decode_png(
        &thumb(&png(
            w,
            h,
            png::ColorType::Rgb,
            png::BitDepth::Sixteen,
            &px16,
            None,
            None,
        ))
        .bytes,
    );
    assert_eq!(d.rgba(50, 50), [0x12, 0xAB, 0xFF, 255]);

    // 16-bit gray+alpha.
    let ga16: Vec<u8> = (0..w * h).flat_map(|_| [0x80, 0x00, 0x40, 0x00]).collect();
    let d = decode_png(
        &thumb(&png(
            w,
            h,
            png::ColorType::GrayscaleAlpha,
            png::BitDepth::Sixteen,
            &ga16,
            None,
            None,
        ))
        .bytes,
    );
    assert_eq!(d.channels, 2, "gray+alpha stays gray+alpha");
    assert_eq!(d.rgba(50, 50), [0x80, 0x80, 0x80, 0x40]);

    // 1-bit gray expands to 0/255 and stays a gray PNG.
    let bits: Vec<u8> = (0..h)
        .flat_map(|_| (0..w.div_ceil(8)).map(|_| 0b1010_1010))
        .collect();
    let t = thumb(&png(
        w,
        h,
        png::ColorType::Grayscale,
        png::BitDepth::One,
        &bits,
        None,
        None,
    ));
    let d = decode_png(&t.bytes);
    assert_eq!(d.channels, 1);
    assert_eq!((d.rgba(0, 0)[0], d.rgba(1, 0)[0]), (255, 0));

    // Gray JPEG gives a gray PNG.
    let gray: Vec<u8> = (0..400 * 300)
        .map(|i| ((i % 400) * 255 / 400) as u8)
        .collect();
    let t = thumb(&jpeg(
        400,
        300,
        jpeg_encoder::ColorType::Luma,
        &gray,
        false,
        &[],
        None,
    ));
    let d = decode_png(&t.bytes);
    assert_eq!((d.width, d.height, d.channels), (330, 248, 1));
    assert!(
        (i32::from(d.rgba(165, 100)[0]) - 127).abs() <= 4,
        "{:?}",
        d.rgba(165, 100)
    );
}

#[test]
fn rgba_that_is_opaque_everywhere_becomes_rgb() {
    let data: Vec<u8> = (0..200 * 200)
        .flat_map(|i| [(i % 200) as u8, 50, 60, 255])
        .collect();
    let d = decode_png(
        &thumb(&png(
            200,
            200,
            png::ColorType::Rgba,
            png::BitDepth::Eight,
            &data,
            None,
            None,
        ))
        .bytes,
    );
    assert_eq!(d.channels, 3);
}

#[test]
fn interlaced_png_decodes_like_its_non_interlaced_twin() {
    let dir = data_dir().join("pngsuite");
    let spec = any_size();
    let mut pairs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("basi") {
            continue;
        }
        let twin = name.replacen("basi", "basn", 1);
        let a = std::fs::read(dir.join(&name)).unwrap();
        let b = std::fs::read(dir.join(&twin)).unwrap();
        assert!(probe(&a).unwrap().progressive && !probe(&b).unwrap().progressive);
        let ta = Thumbnailer::new().thumbnail(&a, &spec).unwrap();
        let tb = Thumbnailer::new().thumbnail(&b, &spec).unwrap();
        assert_eq!(ta.bytes, tb.bytes, "{name} vs {twin}");
        pairs += 1;
    }
    assert!(pairs >= 10, "found only {pairs} interlaced/plain pairs");
}

#[test]
fn progressive_jpeg_matches_baseline() {
    // Same coefficients, different scan order. With a 160 px box, 2800×2100 decodes at
    // 1/8 (and stops early, after the needed scans), 1000×700 at 1/2, 300×200 at full size.
    let mut spec = ThumbSpec {
        max_width: 160,
        max_height: 160,
        ..ThumbSpec::default()
    };
    spec.limits.max_input_bytes = usize::MAX;
    let thumb = |b: &[u8]| Thumbnailer::new().thumbnail(b, &spec).unwrap();
    for (w, h) in [(2800u16, 2100u16), (1000, 700), (300, 200)] {
        let px = photo(w.into(), h.into());
        let base = thumb(&jpeg(
            w,
            h,
            jpeg_encoder::ColorType::Rgb,
            &px,
            false,
            &[],
            None,
        ));
        let prog_bytes = jpeg(w, h, jpeg_encoder::ColorType::Rgb, &px, true, &[], None);
        assert!(probe(&prog_bytes).unwrap().progressive);
        let prog = thumb(&prog_bytes);
        let (a, b) = (decode_png(&base.bytes), decode_png(&prog.bytes));
        let max_diff = a
            .data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap();
        assert!(
            max_diff <= 1,
            "{w}×{h}: progressive differs from baseline by {max_diff}"
        );
    }
}

/// A gray image, one 8-bit value per pixel.
fn png_gray(w: u32, h: u32, data: &[u8]) -> Vec<u8> {
    png(
        w,
        h,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        data,
        None,
        None,
    )
}

#[test]
fn a_dct_scaled_decode_is_resized_from_the_picture_not_its_rounded_up_size() {
    // 1365 px wide decodes at 1/2 as 683 px, the last one only half covered. A sine of
    // period 40 px: resizing all 683 px onto 330 would stretch the picture by half a
    // source pixel and put the right end of the thumbnail ~1 px (of 40) out of phase
    // (mean error ~10 levels there); resized from 682.5 px it matches the PNG's.
    let (w, h) = (1365u16, 200u16);
    let row: Vec<u8> = (0..w)
        .map(|x| {
            (128.0 + 100.0 * (f64::from(x) * std::f64::consts::TAU / 40.0).sin()).round() as u8
        })
        .collect();
    let data: Vec<u8> = (0..h).flat_map(|_| row.iter().copied()).collect();
    let from_png = decode_png(&thumb(&png_gray(w.into(), h.into(), &data)).bytes);
    let jpeg_bytes = jpeg(w, h, jpeg_encoder::ColorType::Luma, &data, false, &[], None);
    let from_jpeg = decode_png(&thumb(&jpeg_bytes).bytes);
    assert_eq!((from_jpeg.width, from_jpeg.height), (330, 48));
    let (cols, rows) = (from_png.width, from_png.height);
    let right_end: Vec<f64> = (10..rows - 10)
        .flat_map(|y| (cols - 30..cols).map(move |x| y * cols + x))
        .map(|i| f64::from(from_png.data[i].abs_diff(from_jpeg.data[i])))
        .collect();
    let mean = right_end.iter().sum::<f64>() / right_end.len() as f64;
    assert!(mean < 2.0, "right end off by {mean:.2} levels on average");
}

/// Mean of the central `n`×`n` pixels' first channel, and of their last (alpha) one.
fn centre_mean(d: &Decoded, n: usize) -> (f64, f64) {
    let ch = d.data.len() / (d.width * d.height);
    let (x0, y0) = ((d.width - n) / 2, (d.height - n) / 2);
    let px: Vec<&[u8]> = (y0..y0 + n)
        .flat_map(|y| (x0..x0 + n).map(move |x| (y * d.width + x) * ch))
        .map(|i| &d.data[i..i + ch])
        .collect();
    let mean = |c: usize| px.iter().map(|p| f64::from(p[c])).sum::<f64>() / px.len() as f64;
    (mean(0), mean(ch - 1))
}

#[test]
fn linear_light_averages_light_and_srgb_averages_values() {
    // A 1-px black and white checkerboard reduced 2.5×: half the light, which is sRGB 188
    // in linear light, while averaging the sRGB values gives their mean, 128.
    let (w, h) = (500usize, 500usize);
    let board: Vec<u8> = (0..w * h)
        .map(|i| if (i % w + i / w) % 2 == 0 { 0 } else { 255 })
        .collect();
    let png = png_gray(500, 500, &board);
    let gray = |space| {
        let spec = ThumbSpec {
            max_width: 200,
            max_height: 200,
            resize_space: space,
            ..ThumbSpec::default()
        };
        centre_mean(
            &decode_png(&Thumbnailer::new().thumbnail(&png, &spec).unwrap().bytes),
            100,
        )
        .0
    };
    let (srgb, linear) = (gray(ResizeSpace::Srgb), gray(ResizeSpace::Linear));
    assert!((srgb - 128.0).abs() < 3.0, "srgb {srgb}");
    assert!((linear - 188.0).abs() < 3.0, "linear {linear}");
}

#[test]
fn linear_light_premultiplies_alpha_in_linear_light() {
    // White, opaque, alternating with fully transparent red: the red must not bleed in (it
    // has no weight), so the colour stays white and alpha is the mean coverage, 128.
    let (w, h) = (500usize, 500usize);
    let data: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            if (i % w + i / w) % 2 == 0 {
                [255, 0, 0, 0]
            } else {
                [255, 255, 255, 255]
            }
        })
        .collect();
    let png = png(
        500,
        500,
        png::ColorType::Rgba,
        png::BitDepth::Eight,
        &data,
        None,
        None,
    );
    let spec = ThumbSpec {
        max_width: 200,
        max_height: 200,
        resize_space: ResizeSpace::Linear,
        ..ThumbSpec::default()
    };
    let d = decode_png(&Thumbnailer::new().thumbnail(&png, &spec).unwrap().bytes);
    let ch = d.data.len() / (d.width * d.height);
    assert_eq!(ch, 4, "alpha kept");
    let (x0, y0) = (50, 50);
    for y in y0..y0 + 100 {
        for x in x0..x0 + 100 {
            let p = &d.data[(y * d.width + x) * 4..][..4];
            assert!(p[1] >= 250 && p[2] >= 250, "red bled in at {x},{y}: {p:?}");
        }
    }
    let alpha = centre_mean(&d, 100).1;
    assert!((alpha - 128.0).abs() < 3.0, "alpha {alpha}");
}

/// sRGB transfer function and its inverse, for reference colours computed here.
fn to_linear(v: f64) -> f64 {
    if v <= 0.04045 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}
fn from_linear(v: f64) -> f64 {
    let v = v.clamp(0.0, 1.0);
    if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

#[test]
fn display_p3_profile_is_converted_to_srgb() {
    // A flat Display-P3 colour; the expected sRGB value comes from the published
    // P3-D65 → sRGB linear matrix, independent of the CMS under test.
    let p3 = [200u8, 100, 50];
    let m = [
        [1.2249, -0.2247, 0.0],
        [-0.0420, 1.0419, 0.0],
        [-0.0197, -0.0786, 1.0979],
    ];
    let lin = p3.map(|v| to_linear(f64::from(v) / 255.0));
    let expected: [f64; 3] = std::array::from_fn(|r| {
        255.0 * from_linear(m[r][0] * lin[0] + m[r][1] * lin[1] + m[r][2] * lin[2])
    });
    let icc = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    let px = rgb_image(400, 300, |_, _| p3);
    let as_png = png(
        400,
        300,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        &px,
        None,
        Some(icc.clone()),
    );
    let as_jpeg = jpeg(
        400,
        300,
        jpeg_encoder::ColorType::Rgb,
        &px,
        false,
        &[],
        Some(&icc),
    );
    for (bytes, what) in [(as_png, "PNG iCCP"), (as_jpeg, "JPEG APP2")] {
        let d = decode_png(&thumb(&bytes).bytes);
        let got = d.mean(100, 100, 110, 110);
        assert_close(got, expected, 3.0, what);
        // And it really changed: P3 values passed through untouched would fail.
        assert!(
            (got[0] - 200.0).abs() > 8.0,
            "{what}: colour was not converted: {got:?}"
        );
    }
}

#[test]
fn cmyk_jpeg_without_profile_uses_adobe_inverted_values() {
    // jpeg-encoder writes Photoshop-style Adobe JPEGs (it stores 255 - ink, and YCCK
    // likewise), so the decoder must undo the inversion. Quadrants of pure inks.
    let inks = [
        [0u8, 255, 255, 0],
        [255, 0, 255, 0],
        [0, 0, 0, 255],
        [0, 0, 0, 0],
    ];
    let expect = [
        [255.0, 0.0, 0.0],
        [0.0, 255.0, 0.0],
        [0.0, 0.0, 0.0],
        [255.0, 255.0, 255.0],
    ];
    let (w, h) = (400usize, 400usize);
    let data: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).map(move |x| inks[(y / 200) * 2 + x / 200]))
        .flatten()
        .collect();
    for color in [
        jpeg_encoder::ColorType::Cmyk,
        jpeg_encoder::ColorType::CmykAsYcck,
    ] {
        let bytes = jpeg(400, 400, color, &data, false, &[], None);
        let d = decode_png(&thumb(&bytes).bytes);
        assert_eq!((d.width, d.height, d.channels), (330, 330, 3));
        for (q, (x, y)) in [(80, 80), (250, 80), (80, 250), (250, 250)]
            .into_iter()
            .enumerate()
        {
            assert_close(
                d.mean(x, y, x + 5, y + 5),
                expect[q],
                10.0,
                &format!("{color:?} quadrant {q}"),
            );
        }
    }
}

#[test]
fn ycck_jpeg_with_cmyk_profile_matches_littlecms() {
    // Region means of the same file converted by littlecms 2 (Pillow's ImageCms, perceptual
    // intent, embedded CMYK profile → sRGB) at full size: a reference from another CMS.
    const LCMS: [[f64; 3]; 16] = [
        [120.0, 120.0, 120.0],
        [118.0, 118.0, 116.0],
        [106.0, 109.0, 106.0],
        [140.0, 146.0, 149.0],
        [114.0, 110.0, 103.0],
        [102.0, 106.0, 98.0],
        [82.0, 85.0, 86.0],
        [104.0, 105.0, 97.0],
        [109.0, 136.0, 79.0],
        [113.0, 135.0, 90.0],
        [104.0, 89.0, 89.0],
        [166.0, 172.0, 157.0],
        [108.0, 110.0, 90.0],
        [113.0, 121.0, 119.0],
        [115.0, 119.0, 121.0],
        [178.0, 179.0, 181.0],
    ];
    let bytes = std::fs::read(data_dir().join("jpeg/ycck.jpg")).unwrap();
    let d = decode_png(&thumb(&bytes).bytes);
    assert_eq!((d.width, d.height), (330, 220));
    let (w, h) = (d.width, d.height);
    for gy in 0..4 {
        for gx in 0..4 {
            let got = d.mean(
                gx * w / 4 + w / 16,
                gy * h / 4 + h / 16,
                (gx + 1) * w / 4 - w / 16,
                (gy + 1) * h / 4 - h / 16,
            );
            assert_close(got, LCMS[gy * 4 + gx], 8.0, &format!("region {gx},{gy}"));
        }
    }
}

#[test]
fn same_input_same_bytes() {
    let px = photo(900, 700);
    for bytes in [jpeg_rgb(900, 700, &px), png_rgb(900, 700, &px)] {
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
            let spec = ThumbSpec {
                format,
                ..ThumbSpec::default()
            };
            let a = Thumbnailer::new().thumbnail(&bytes, &spec).unwrap();
            // Dirty buffers: a smaller image, then a larger one, whose decode buffer the
            // next decode reuses.
            let mut t = Thumbnailer::new();
            t.thumbnail(&jpeg_rgb(500, 500, &photo(500, 500)), &spec)
                .unwrap();
            t.thumbnail(&png_rgb(1400, 1100, &photo(1400, 1100)), &spec)
                .unwrap();
            let b = t.thumbnail(&bytes, &spec).unwrap();
            assert_eq!(a.bytes, b.bytes, "{format:?}");
            assert_eq!(a.content_type(), format.content_type());
        }
    }
}

#[test]
fn output_formats_decode_to_the_right_size() {
    let bytes = png_rgb(1000, 500, &photo(1000, 500));
    let spec = |format| ThumbSpec {
        format,
        ..ThumbSpec::default()
    };
    let j = Thumbnailer::new()
        .thumbnail(&bytes, &spec(ImageFormat::Jpeg))
        .unwrap();
    assert_eq!(probe(&j.bytes).unwrap().width, 330);
    assert_eq!(probe(&j.bytes).unwrap().height, 165);
    let w = Thumbnailer::new()
        .thumbnail(&bytes, &spec(ImageFormat::WebP))
        .unwrap();
    assert!(w.bytes.starts_with(b"RIFF") && &w.bytes[8..12] == b"WEBP");
    let dec = image_webp::WebPDecoder::new(std::io::Cursor::new(&w.bytes)).unwrap();
    assert_eq!(dec.dimensions(), (330, 165));
}

#[test]
fn size_budget_steps() {
    // Noise compresses badly: a tight budget forces each step in turn.
    let noise: Vec<u8> = (0u32..600 * 600 * 3)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let bytes = png_rgb(600, 600, &noise);
    let run = |budget: Option<usize>, format| {
        let spec = ThumbSpec {
            budget_bytes: budget,
            format,
            ..ThumbSpec::default()
        };
        Thumbnailer::new().thumbnail(&bytes, &spec).unwrap()
    };
    let free = run(None, ImageFormat::Png);
    assert_eq!(free.budget, BudgetStep::Fits);
    let fast = free.bytes.len();
    let recompressed = run(Some(fast - 1), ImageFormat::Png);
    assert_eq!(recompressed.budget, BudgetStep::Recompressed);
    let high = recompressed.bytes.len();
    assert!(high < fast);
    let quantized = run(Some(high - 1), ImageFormat::Png);
    assert_eq!(quantized.budget, BudgetStep::Quantized { colors: 256 });
    assert!(quantized.bytes.len() < high);
    assert_eq!(decode_png(&quantized.bytes).width, 330);
    let impossible = run(Some(100), ImageFormat::Png);
    assert_eq!(impossible.budget, BudgetStep::Exceeded);
    assert!(impossible.bytes.len() < free.bytes.len());
    let q85 = run(None, ImageFormat::Jpeg).bytes.len();
    let jpeg = run(Some(q85 - 1), ImageFormat::Jpeg);
    assert_eq!(jpeg.budget, BudgetStep::ReducedQuality { quality: 70 });
    assert!(jpeg.bytes.len() < q85);
}

#[test]
fn batch_keeps_order_and_errors() {
    let inputs: Vec<Vec<u8>> = vec![
        png_rgb(400, 200, &photo(400, 200)),
        b"not an image".to_vec(),
        jpeg_rgb(200, 400, &photo(200, 400)),
    ];
    let out = thumbcore::thumbnail_batch(&inputs, &ThumbSpec::default());
    assert_eq!(out.len(), 3);
    assert_eq!(
        out[0].as_ref().map(|t| (t.width, t.height)).unwrap(),
        (330, 165)
    );
    assert_eq!(
        out[1].as_ref().unwrap_err().code(),
        "InvalidThumbnailFormat"
    );
    assert_eq!(
        out[2].as_ref().map(|t| (t.width, t.height)).unwrap(),
        (165, 330)
    );
}
