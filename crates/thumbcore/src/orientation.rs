//! EXIF orientation: reading the tag and turning stored pixels upright.

/// The EXIF `Orientation` tag (0x0112): how the stored pixels must be transformed to be
/// shown upright. The discriminant is the tag's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Orientation {
    /// 1: stored upright.
    #[default]
    Normal = 1,
    /// 2: mirrored left–right.
    FlipHorizontal = 2,
    /// 3: upside down.
    Rotate180 = 3,
    /// 4: mirrored top–bottom.
    FlipVertical = 4,
    /// 5: mirrored along the top-left/bottom-right diagonal.
    Transpose = 5,
    /// 6: must be turned 90° clockwise.
    Rotate90 = 6,
    /// 7: mirrored along the top-right/bottom-left diagonal.
    Transverse = 7,
    /// 8: must be turned 90° counter-clockwise.
    Rotate270 = 8,
}

impl Orientation {
    /// The orientation for a tag value; anything outside 1–8 counts as `Normal`.
    pub fn from_exif(value: u32) -> Orientation {
        match value {
            2 => Orientation::FlipHorizontal,
            3 => Orientation::Rotate180,
            4 => Orientation::FlipVertical,
            5 => Orientation::Transpose,
            6 => Orientation::Rotate90,
            7 => Orientation::Transverse,
            8 => Orientation::Rotate270,
            _ => Orientation::Normal,
        }
    }

    /// True when width and height trade places (values 5–8).
    pub fn swaps_axes(self) -> bool {
        matches!(
            self,
            Orientation::Transpose
                | Orientation::Rotate90
                | Orientation::Transverse
                | Orientation::Rotate270
        )
    }

    /// Reads the orientation from a TIFF-structured EXIF block (what follows `Exif\0\0` in a
    /// JPEG APP1 segment, or a PNG `eXIf` chunk). Unreadable EXIF counts as `Normal`: a
    /// damaged metadata block is no reason to refuse an image.
    pub fn from_exif_block(tiff: &[u8]) -> Orientation {
        let Ok(exif) = exif::Reader::new().read_raw(tiff.to_vec()) else {
            return Orientation::Normal;
        };
        exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)
            .and_then(|f| f.value.get_uint(0))
            .map_or(Orientation::Normal, Orientation::from_exif)
    }
}

/// Returns the upright version of a `width`×`height` image with `channels` interleaved bytes
/// per pixel, and its new size.
pub(crate) fn apply(
    pixels: Vec<u8>,
    width: usize,
    height: usize,
    channels: usize,
    orientation: Orientation,
) -> (Vec<u8>, usize, usize) {
    if orientation == Orientation::Normal {
        return (pixels, width, height);
    }
    let (ow, oh) = if orientation.swaps_axes() {
        (height, width)
    } else {
        (width, height)
    };
    let mut out = vec![0u8; pixels.len()];
    let (w1, h1) = (width - 1, height - 1);
    for y in 0..oh {
        for x in 0..ow {
            // The stored pixel that lands at (x, y) once upright.
            let (sx, sy) = match orientation {
                Orientation::Normal => (x, y),
                Orientation::FlipHorizontal => (w1 - x, y),
                Orientation::Rotate180 => (w1 - x, h1 - y),
                Orientation::FlipVertical => (x, h1 - y),
                Orientation::Transpose => (y, x),
                Orientation::Rotate90 => (y, h1 - x),
                Orientation::Transverse => (w1 - y, h1 - x),
                Orientation::Rotate270 => (w1 - y, x),
            };
            let src = (sy * width + sx) * channels;
            let dst = (y * ow + x) * channels;
            out[dst..dst + channels].copy_from_slice(&pixels[src..src + channels]);
        }
    }
    (out, ow, oh)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 image whose pixels are their own indices 0..6.
    fn rotate(o: Orientation) -> (Vec<u8>, usize, usize) {
        apply((0..6).collect(), 3, 2, 1, o)
    }

    #[test]
    fn all_eight_orientations() {
        // Stored:  0 1 2
        //          3 4 5
        let check =
            |o, expect: &[u8], w, h| assert_eq!(rotate(o), (expect.to_vec(), w, h), "{o:?}");
        check(Orientation::Normal, &[0, 1, 2, 3, 4, 5], 3, 2);
        check(Orientation::FlipHorizontal, &[2, 1, 0, 5, 4, 3], 3, 2);
        check(Orientation::Rotate180, &[5, 4, 3, 2, 1, 0], 3, 2);
        check(Orientation::FlipVertical, &[3, 4, 5, 0, 1, 2], 3, 2);
        check(Orientation::Transpose, &[0, 3, 1, 4, 2, 5], 2, 3);
        check(Orientation::Rotate90, &[3, 0, 4, 1, 5, 2], 2, 3);
        check(Orientation::Transverse, &[5, 2, 4, 1, 3, 0], 2, 3);
        check(Orientation::Rotate270, &[2, 5, 1, 4, 0, 3], 2, 3);
    }

    #[test]
    fn out_of_range_values_are_normal() {
        for v in [0, 9, 255, u32::MAX] {
            assert_eq!(Orientation::from_exif(v), Orientation::Normal);
        }
        assert_eq!(
            Orientation::from_exif_block(b"garbage"),
            Orientation::Normal
        );
    }
}
