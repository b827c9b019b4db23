//! Lanczos3 resizing with fast_image_resize, premultiplied alpha, SIMD chosen at run time.

use std::sync::OnceLock;

use fast_image_resize as fir;
use fir::images::{Image, ImageRef, TypedImage, TypedImageRef};
use fir::pixels::{U8, U8x2, U8x3, U8x4, U16, U16x2, U16x3, U16x4};

use crate::decode::{PixelLayout, Pixels};
use crate::error::{Error, Result, try_zeroed};

/// The space the Lanczos3 filter averages in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResizeSpace {
    /// On the sRGB-encoded values, as browsers, vipsthumbnail and Pillow do by default:
    /// fastest, and what most thumbnails look like. Fine dark-on-light detail (text, line
    /// art) comes out lighter and thinner than the eye averages it.
    #[default]
    Srgb,
    /// In linear light: sRGB decoded to 16-bit linear values, resized (alpha premultiplied
    /// in linear light), encoded back. Averages as light does: a black and white 1-pixel
    /// checkerboard becomes sRGB 188, not 128. About twice the resize time and memory.
    Linear,
}

impl std::str::FromStr for ResizeSpace {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "srgb" => Ok(ResizeSpace::Srgb),
            "linear" => Ok(ResizeSpace::Linear),
            _ => Err(format!("unknown resize space {s:?}: use srgb or linear")),
        }
    }
}

/// Resizes `src` to `width`×`height` in its own layout; also gives back `src`'s buffer when
/// it is done with it, for reuse. `extent` is how much of `src` the picture covers, in its
/// pixels: a DCT-scaled JPEG decode is rounded up to whole pixels (1365 / 2 → 683), and
/// its last column and row hold only part of a pixel's worth of picture, so the resize maps
/// 682.5 source pixels, not 683, onto the output (as Pillow's `draft` box does); otherwise
/// the picture is stretched by up to a pixel and fine detail lands out of phase. CMYK has
/// no alpha, so its fourth channel is never used to premultiply; it is resized as it is
/// stored whatever `space` says (its values are not sRGB).
pub(crate) fn resize(
    resizer: &mut fir::Resizer,
    src: Pixels,
    width: usize,
    height: usize,
    extent: (f64, f64),
    space: ResizeSpace,
) -> Result<(Pixels, Option<Vec<u8>>)> {
    #[allow(clippy::cast_precision_loss)] // image sides are far below 2^52
    let whole = (src.width as f64, src.height as f64);
    if (src.width, src.height) == (width, height) && extent == whole {
        return Ok((src, None));
    }
    let resized = resize_ref(resizer, &src, width, height, extent, space)?;
    Ok((resized, Some(src.data)))
}

/// [`resize`] leaving `src` as it is (a set of renditions resizes one decode several
/// times); `src` must differ from the output in size or extent.
pub(crate) fn resize_ref(
    resizer: &mut fir::Resizer,
    src: &Pixels,
    width: usize,
    height: usize,
    extent: (f64, f64),
    space: ResizeSpace,
) -> Result<Pixels> {
    #[allow(clippy::cast_precision_loss)] // image sides are far below 2^52
    let whole = (src.width as f64, src.height as f64);
    let mut dst = try_zeroed(width * height * src.layout.channels())?;
    // `use_alpha` makes fir multiply, resize and divide itself (do not premultiply here).
    let mut options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3))
        .use_alpha(src.layout.has_alpha());
    if extent != whole {
        options = options.crop(0.0, 0.0, extent.0, extent.1);
    }
    let size = (
        to_u32(src.width)?,
        to_u32(src.height)?,
        to_u32(width)?,
        to_u32(height)?,
    );
    let wide = match (space, src.layout) {
        (_, PixelLayout::Cmyk { .. }) => None,
        (ResizeSpace::Linear, _) => Some(srgb_mapper()),
        (ResizeSpace::Srgb, _) => None,
    };
    if let Some(mapper) = wide {
        let r = &mut *resizer;
        let mut w = Wide {
            resizer: r,
            mapper,
            src,
            dst: &mut dst,
            size,
            options: &options,
        };
        match src.layout {
            PixelLayout::Gray => w.run::<U16>(fir::PixelType::U8, fir::PixelType::U16),
            PixelLayout::GrayAlpha => w.run::<U16x2>(fir::PixelType::U8x2, fir::PixelType::U16x2),
            PixelLayout::Rgb => w.run::<U16x3>(fir::PixelType::U8x3, fir::PixelType::U16x3),
            _ => w.run::<U16x4>(fir::PixelType::U8x4, fir::PixelType::U16x4),
        }?;
    } else {
        match src.layout {
            PixelLayout::Gray => typed::<U8>(resizer, &src.data, &mut dst, size, &options),
            PixelLayout::GrayAlpha => typed::<U8x2>(resizer, &src.data, &mut dst, size, &options),
            PixelLayout::Rgb => typed::<U8x3>(resizer, &src.data, &mut dst, size, &options),
            PixelLayout::Rgba | PixelLayout::Cmyk { .. } => {
                typed::<U8x4>(resizer, &src.data, &mut dst, size, &options)
            }
        }?;
    }
    Ok(Pixels {
        width,
        height,
        layout: src.layout,
        data: dst,
    })
}

/// sRGB ↔ linear tables (u8 → u16 forward, u16 → u8 back), built once per process.
fn srgb_mapper() -> &'static fir::PixelComponentMapper {
    static MAPPER: OnceLock<fir::PixelComponentMapper> = OnceLock::new();
    MAPPER.get_or_init(fir::create_srgb_mapper)
}

fn to_u32(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Internal(format!("dimension {v} out of range")))
}

fn internal(e: &dyn std::fmt::Display) -> Error {
    Error::Internal(format!("resize: {e}"))
}

/// The typed entry point: one instantiation per pixel type we use (the untyped one builds
/// every pixel type and is several times slower to compile).
fn typed<P: fir::PixelTrait>(
    resizer: &mut fir::Resizer,
    src: &[u8],
    dst: &mut [u8],
    (sw, sh, dw, dh): (u32, u32, u32, u32),
    options: &fir::ResizeOptions,
) -> Result<()> {
    let src = TypedImageRef::<P>::from_buffer(sw, sh, src).map_err(|e| internal(&e))?;
    let mut dst = TypedImage::<P>::from_buffer(dw, dh, dst).map_err(|e| internal(&e))?;
    resizer
        .resize_typed(&src, &mut dst, options)
        .map_err(|e| internal(&e))
}

/// A resize through 16-bit samples: 8-bit source mapped up (alpha scaled, not mapped),
/// resized, mapped back down into `dst`.
struct Wide<'a> {
    resizer: &'a mut fir::Resizer,
    mapper: &'a fir::PixelComponentMapper,
    src: &'a Pixels,
    dst: &'a mut [u8],
    size: (u32, u32, u32, u32),
    options: &'a fir::ResizeOptions,
}

impl Wide<'_> {
    fn run<P: fir::PixelTrait>(
        &mut self,
        narrow: fir::PixelType,
        wide: fir::PixelType,
    ) -> Result<()> {
        let (sw, sh, dw, dh) = self.size;
        let channels = self.src.layout.channels();
        let mut big = try_zeroed(self.src.data.len() * 2)?;
        let mut small = try_zeroed(self.dst.len() * 2)?;
        {
            let src = ImageRef::new(sw, sh, &self.src.data, narrow).map_err(|e| internal(&e))?;
            let mut big = Image::from_slice_u8(sw, sh, &mut big, wide).map_err(|e| internal(&e))?;
            self.mapper
                .forward_map(&src, &mut big)
                .map_err(|e| internal(&e))?;
        }
        debug_assert_eq!(big.len(), sw as usize * sh as usize * channels * 2);
        typed::<P>(self.resizer, &big, &mut small, self.size, self.options)?;
        drop(big);
        let small = ImageRef::new(dw, dh, &small, wide).map_err(|e| internal(&e))?;
        let mut dst = Image::from_slice_u8(dw, dh, self.dst, narrow).map_err(|e| internal(&e))?;
        self.mapper
            .backward_map(&small, &mut dst)
            .map_err(|e| internal(&e))
    }
}
