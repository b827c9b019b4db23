//! Lanczos3 resizing with fast_image_resize, premultiplied alpha, SIMD chosen at run time.

use fast_image_resize as fir;
use fir::images::{TypedImage, TypedImageRef};
use fir::pixels::{U8, U8x2, U8x3, U8x4};

use crate::decode::{PixelLayout, Pixels};
use crate::error::{Error, Result, try_zeroed};

/// Resizes `src` to `width`×`height` in its own layout; also gives back `src`'s buffer when
/// it is done with it, for reuse. CMYK has no alpha, so its fourth channel is never used to
/// premultiply.
pub(crate) fn resize(
    resizer: &mut fir::Resizer,
    src: Pixels,
    width: usize,
    height: usize,
) -> Result<(Pixels, Option<Vec<u8>>)> {
    if (src.width, src.height) == (width, height) {
        return Ok((src, None));
    }
    let mut dst = try_zeroed(width * height * src.layout.channels())?;
    // `use_alpha` makes fir multiply, resize and divide itself (do not premultiply here).
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Lanczos3))
        .use_alpha(src.layout.has_alpha());
    let size = (
        to_u32(src.width)?,
        to_u32(src.height)?,
        to_u32(width)?,
        to_u32(height)?,
    );
    match src.layout {
        PixelLayout::Gray => typed::<U8>(resizer, &src.data, &mut dst, size, &options),
        PixelLayout::GrayAlpha => typed::<U8x2>(resizer, &src.data, &mut dst, size, &options),
        PixelLayout::Rgb => typed::<U8x3>(resizer, &src.data, &mut dst, size, &options),
        PixelLayout::Rgba | PixelLayout::Cmyk { .. } => {
            typed::<U8x4>(resizer, &src.data, &mut dst, size, &options)
        }
    }?;
    Ok((
        Pixels {
            width,
            height,
            layout: src.layout,
            data: dst,
        },
        Some(src.data),
    ))
}

fn to_u32(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Internal(format!("dimension {v} out of range")))
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
    let internal = |e: &dyn std::fmt::Display| Error::Internal(format!("resize: {e}"));
    let src = TypedImageRef::<P>::from_buffer(sw, sh, src).map_err(|e| internal(&e))?;
    let mut dst = TypedImage::<P>::from_buffer(dw, dh, dst).map_err(|e| internal(&e))?;
    resizer
        .resize_typed(&src, &mut dst, options)
        .map_err(|e| internal(&e))
}
