//! thumbcore: thumbd's image pipeline. Bytes in, thumbnail bytes out.
//!
//! Synchronous and free of I/O: callers hand in bytes and get bytes back, so the API, the
//! worker and the `thumbd thumb` CLI all share the exact same code.
//!
//! - [`probe`] reads format, size, EXIF orientation and animation from the header,
//!   allocating no pixels; [`Limits::probe`] first refuses a format not accepted (PNG and
//!   JPEG by default; WebP and GIF opt-in), [`Limits::check`] then what is too large or too
//!   small.
//! - [`Thumbnailer::thumbnail`] runs the pipeline: sniff → probe → check limits → decode
//!   (JPEG at a DCT-reduced scale through libjpeg-turbo; PNG through `png`; WebP through
//!   `image-webp`; GIF through `gif`, first frame) → Lanczos3 resize with premultiplied
//!   alpha (fast_image_resize) → ICC/CMYK to sRGB (moxcms) → EXIF orientation → encode (PNG
//!   by default, JPEG, or WebP lossy through libwebp or lossless) within a size budget.
//! - [`Thumbnailer::render`] makes a set of [`Rendition`]s (a [`Profile`]'s sizes and
//!   formats) from one decode; [`Thumbnailer::thumbnail`] is the set of one.
//! - [`thumbnail_batch`] does the same for many inputs on rayon.
//! - Every failure is an [`Error`] with a stable [`code`](Error::code).
//!
//! ```
//! use thumbcore::{ThumbSpec, Thumbnailer};
//!
//! // A 400×300 gray PNG, made on the spot.
//! let mut png = Vec::new();
//! let mut enc = png::Encoder::new(&mut png, 400, 300);
//! enc.set_color(png::ColorType::Grayscale);
//! enc.write_header().unwrap().write_image_data(&vec![128; 400 * 300]).unwrap();
//!
//! let thumb = Thumbnailer::new().thumbnail(&png, &ThumbSpec::default()).unwrap();
//! assert_eq!((thumb.width, thumb.height), (330, 248));
//! assert_eq!(thumb.content_type(), "image/png");
//!
//! let err = Thumbnailer::new().thumbnail(b"GIF89a...", &ThumbSpec::default()).unwrap_err();
//! assert_eq!(err.code(), "InvalidThumbnailFormat");
//! ```

mod color;
mod decode;
mod encode;
mod error;
mod format;
mod geometry;
mod limits;
mod orientation;
mod output;
mod placeholder;
mod probe;
mod profile;
mod resize;
mod thumbnailer;

pub use encode::BudgetStep;
pub use error::{Error, Result};
pub use format::{ImageFormat, InputFormats, check_declared_type};
pub use geometry::fit;
pub use limits::Limits;
pub use orientation::Orientation;
pub use output::Output;
pub use placeholder::Placeholder;
pub use probe::{ImageInfo, JpegLayout, probe};
pub use profile::{Profile, Profiles, Rendition};
pub use resize::ResizeSpace;
pub use thumbnailer::{
    Frame, Rendered, RenditionSet, ThumbSpec, Thumbnail, Thumbnailer, thumbnail_batch,
};
