//! Placeholders a page paints while a thumbnail loads: a ThumbHash, a 4×3 BlurHash and the
//! average colour, all from the thumbnail's own pixels (upright, sRGB), shrunk to at most
//! 100×100 first (ThumbHash's limit; BlurHash needs no more).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::decode::{PixelLayout, Pixels};

/// The most either side of the image the hashes are computed from.
const MAX_SIDE: usize = 100;

/// What to paint before the thumbnail arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// ThumbHash, standard base64 (decodes to a ~32 px image of the thumbnail's aspect, alpha
    /// included).
    pub thumbhash: String,
    /// BlurHash with 4×3 components.
    pub blurhash: String,
    /// The alpha-weighted mean colour, `#rrggbb`.
    pub average_color: String,
}

/// The placeholder of `pixels` (Gray, GrayAlpha, Rgb or Rgba; anything else is treated as
/// opaque grey-free RGB by its first three channels).
pub(crate) fn placeholder(pixels: &Pixels) -> Placeholder {
    let (w, h, rgba) = shrink(pixels);
    let thumbhash = STANDARD.encode(thumbhash::rgba_to_thumb_hash(w, h, &rgba));
    let blurhash = blurhash::encode(4, 3, to_u32(w), to_u32(h), &rgba)
        .expect("4×3 components and a non-empty image are valid");
    Placeholder {
        thumbhash,
        blurhash,
        average_color: average(&rgba),
    }
}

fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// RGBA of pixel `i` of `p`.
fn rgba_at(p: &Pixels, i: usize) -> [u8; 4] {
    let c = p.layout.channels();
    let px = &p.data[i * c..i * c + c];
    match p.layout {
        PixelLayout::Gray => [px[0], px[0], px[0], 255],
        PixelLayout::GrayAlpha => [px[0], px[0], px[0], px[1]],
        PixelLayout::Rgba => [px[0], px[1], px[2], px[3]],
        PixelLayout::Rgb | PixelLayout::Cmyk { .. } => [px[0], px[1], px[2], 255],
    }
}

/// `pixels` as RGBA, box-averaged down to fit `MAX_SIDE` × `MAX_SIDE` (never up).
fn shrink(p: &Pixels) -> (usize, usize, Vec<u8>) {
    let (sw, sh) = (p.width.max(1), p.height.max(1));
    let long = sw.max(sh);
    let target = long.min(MAX_SIDE);
    let w = ((sw * target + long / 2) / long).max(1);
    let h = ((sh * target + long / 2) / long).max(1);
    let mut out = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        let (y0, y1) = (y * sh / h, ((y + 1) * sh / h).max(y * sh / h + 1));
        for x in 0..w {
            let (x0, x1) = (x * sw / w, ((x + 1) * sw / w).max(x * sw / w + 1));
            // Alpha-weighted, so transparent pixels lend no colour.
            let mut sum = [0u64; 4];
            for sy in y0..y1.min(p.height) {
                for sx in x0..x1.min(p.width) {
                    let [r, g, b, a] = rgba_at(p, sy * p.width + sx);
                    let a64 = u64::from(a);
                    sum[0] += u64::from(r) * a64;
                    sum[1] += u64::from(g) * a64;
                    sum[2] += u64::from(b) * a64;
                    sum[3] += a64;
                }
            }
            let n = ((y1.min(p.height) - y0) * (x1.min(p.width) - x0)).max(1) as u64;
            let alpha = sum[3];
            let channel = |s: u64| {
                s.checked_div(alpha)
                    .map_or(0, |v| u8::try_from(v).unwrap_or(u8::MAX))
            };
            out.extend_from_slice(&[
                channel(sum[0]),
                channel(sum[1]),
                channel(sum[2]),
                u8::try_from(alpha / n).unwrap_or(u8::MAX),
            ]);
        }
    }
    (w, h, out)
}

/// The alpha-weighted mean of `rgba`, `#rrggbb` (`#000000` when all of it is transparent).
fn average(rgba: &[u8]) -> String {
    let mut sum = [0u64; 4];
    for px in rgba.chunks_exact(4) {
        let a = u64::from(px[3]);
        for c in 0..3 {
            sum[c] += u64::from(px[c]) * a;
        }
        sum[3] += a;
    }
    let mean = |s: u64| s.checked_div(sum[3]).unwrap_or(0);
    format!(
        "#{:02x}{:02x}{:02x}",
        mean(sum[0]),
        mean(sum[1]),
        mean(sum[2])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(
        w: usize,
        h: usize,
        layout: PixelLayout,
        f: impl Fn(usize, usize) -> Vec<u8>,
    ) -> Pixels {
        let data = (0..h)
            .flat_map(|y| {
                (0..w).flat_map({
                    let f = &f;
                    move |x| f(x, y)
                })
            })
            .collect();
        Pixels {
            width: w,
            height: h,
            layout,
            data,
        }
    }

    #[test]
    fn hashes_decode_to_the_thumbnails_shape_and_colour() {
        // 330×165, left half red, right half blue.
        let p = image(330, 165, PixelLayout::Rgb, |x, _| {
            if x < 165 {
                vec![255, 0, 0]
            } else {
                vec![0, 0, 255]
            }
        });
        let ph = placeholder(&p);
        let hash = STANDARD.decode(&ph.thumbhash).unwrap();
        let (w, h, rgba) = thumbhash::thumb_hash_to_rgba(&hash).unwrap();
        let aspect = w as f64 / h as f64;
        assert!((aspect - 2.0).abs() < 0.25, "{w}×{h}");
        // Its left edge is reddish, its right edge bluish.
        let left = &rgba[(h / 2 * w) * 4..(h / 2 * w) * 4 + 4];
        let right = &rgba[(h / 2 * w + w - 1) * 4..(h / 2 * w + w - 1) * 4 + 4];
        assert!(
            left[0] > left[2] && right[2] > right[0],
            "{left:?} {right:?}"
        );
        let blur = blurhash::decode(&ph.blurhash, 8, 4, 1.0).unwrap();
        assert!(
            blur[0] > blur[2],
            "blurhash left pixel is reddish: {:?}",
            &blur[..4]
        );
        assert_eq!(ph.average_color, "#7f007f");
    }

    #[test]
    fn transparency_lends_no_colour_and_grey_stays_grey() {
        let p = image(120, 120, PixelLayout::GrayAlpha, |x, _| {
            if x < 60 { vec![200, 255] } else { vec![0, 0] }
        });
        let ph = placeholder(&p);
        assert_eq!(ph.average_color, "#c8c8c8");
        let hash = STANDARD.decode(&ph.thumbhash).unwrap();
        let (_, _, rgba) = thumbhash::thumb_hash_to_rgba(&hash).unwrap();
        assert!(
            rgba.chunks(4).any(|px| px[3] < 128),
            "some of it is transparent"
        );
        // A tiny image is not scaled up.
        let tiny = image(3, 2, PixelLayout::Rgba, |_, _| vec![10, 20, 30, 255]);
        assert_eq!(shrink(&tiny).0, 3);
        assert_eq!(placeholder(&tiny).average_color, "#0a141e");
    }
}
