//! `Output`: an output format and its quality, written `FORMAT[:QUALITY]` as README's
//! configuration (and the renditions of profiles) write it.

use crate::format::ImageFormat;
use crate::thumbnailer::ThumbSpec;

/// What to write: `png`; `jpeg` or `jpeg:Q`; `webp` or `webp:Q` (lossy), or
/// `webp:lossless`; `avif` or `avif:Q`. Q is 1–100; without it JPEG is 85, WebP 80 and
/// AVIF 80.
///
/// ```
/// use thumbcore::{ImageFormat, Output, ThumbSpec};
///
/// let out: Output = "webp".parse().unwrap();
/// assert_eq!((out.format, out.quality), (ImageFormat::WebP, Some(80)));
/// let lossless: Output = "webp:lossless".parse().unwrap();
/// assert_eq!(lossless.quality, None);
/// assert_eq!(lossless.to_string(), "webp:lossless");
///
/// let mut spec = ThumbSpec::default();
/// "jpeg:70".parse::<Output>().unwrap().apply(&mut spec);
/// assert_eq!((spec.format, spec.jpeg_quality), (ImageFormat::Jpeg, 70));
/// assert!("png:90".parse::<Output>().is_err());
/// assert!("gif".parse::<Output>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// PNG, JPEG, WebP or AVIF (AVIF only as a rendition: `output_format` refuses it).
    pub format: ImageFormat,
    /// The quality of a lossy format (JPEG, WebP, AVIF); `None` for PNG and lossless WebP.
    pub quality: Option<u8>,
}

impl Output {
    /// JPEG's quality when none is given.
    pub const JPEG_QUALITY: u8 = 85;
    /// Lossy WebP's quality when none is given.
    pub const WEBP_QUALITY: u8 = 80;
    /// AVIF's quality when none is given (ravif's 1–100 scale).
    pub const AVIF_QUALITY: u8 = 80;

    /// Sets `spec`'s format and that format's quality.
    pub fn apply(self, spec: &mut ThumbSpec) {
        spec.format = self.format;
        match self.format {
            ImageFormat::Jpeg => spec.jpeg_quality = self.quality.unwrap_or(Self::JPEG_QUALITY),
            ImageFormat::WebP => spec.webp_quality = self.quality,
            _ => {}
        }
    }

    /// The output `spec` makes.
    pub fn of(spec: &ThumbSpec) -> Output {
        Output {
            format: spec.format,
            quality: match spec.format {
                ImageFormat::Jpeg => Some(spec.jpeg_quality),
                ImageFormat::WebP => spec.webp_quality,
                _ => None,
            },
        }
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.format.name())?;
        match (self.format, self.quality) {
            (ImageFormat::WebP, None) => f.write_str(":lossless"),
            (_, Some(q)) => write!(f, ":{q}"),
            _ => Ok(()),
        }
    }
}

impl std::str::FromStr for Output {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        const USAGE: &str = "use png, jpeg[:1-100], webp[:1-100], webp:lossless or avif[:1-100]";
        let (name, quality) = match s.trim().split_once(':') {
            Some((name, q)) => (name, Some(q.trim())),
            None => (s.trim(), None),
        };
        let format: ImageFormat = name.parse().map_err(|_| format!("{s:?}: {USAGE}"))?;
        let level = |q: &str| {
            q.parse::<u8>()
                .ok()
                .filter(|q| (1..=100).contains(q))
                .ok_or_else(|| format!("{s:?}: the quality must be 1 to 100"))
        };
        let quality = match (format, quality) {
            (ImageFormat::Png, None) => None,
            (ImageFormat::Jpeg, None) => Some(Self::JPEG_QUALITY),
            (ImageFormat::WebP, None) => Some(Self::WEBP_QUALITY),
            (ImageFormat::Avif, None) => Some(Self::AVIF_QUALITY),
            (ImageFormat::WebP, Some(q)) if q.eq_ignore_ascii_case("lossless") => None,
            (ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Avif, Some(q)) => Some(level(q)?),
            _ => return Err(format!("{s:?}: {USAGE}")),
        };
        Ok(Output { format, quality })
    }
}
