//! Input and output formats: sniffing the bytes, matching a declared `Content-Type`, and the
//! set of input formats a deployment accepts.

use crate::error::{Error, Result};

/// An image format thumbd reads (PNG, JPEG; WebP and GIF when accepted) or writes (PNG,
/// JPEG, WebP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// Portable Network Graphics.
    Png,
    /// JPEG (JFIF/EXIF).
    Jpeg,
    /// WebP: read (lossy, lossless, extended, the first frame of an animation) when
    /// accepted; written lossy or lossless.
    WebP,
    /// GIF: read (the first frame, on its logical screen) when accepted; never written.
    Gif,
    /// AVIF: written (renditions); never read.
    Avif,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

impl ImageFormat {
    /// Every format thumbd can read, in the order messages list them.
    pub const INPUTS: [ImageFormat; 4] = [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::WebP,
        ImageFormat::Gif,
    ];

    /// Sniffs the format from the first bytes (magic numbers: PNG signature, JPEG SOI,
    /// `RIFF….WEBP`, `GIF87a`/`GIF89a`), whether or not it is accepted.
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        if bytes.starts_with(PNG_SIGNATURE) {
            Some(ImageFormat::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageFormat::Jpeg)
        } else if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
            Some(ImageFormat::WebP)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(ImageFormat::Gif)
        } else {
            None
        }
    }

    /// The format a `Content-Type` value declares, if it is one of `accepted`: `image/png`,
    /// `image/jpeg` or its alias `image/jpg`, `image/webp`, `image/gif` (case-insensitive,
    /// parameters ignored). Anything else is [`Error::UnsupportedContentType`].
    pub fn from_content_type(content_type: &str, accepted: InputFormats) -> Result<ImageFormat> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let format = ImageFormat::INPUTS
            .into_iter()
            .find(|f| essence.eq_ignore_ascii_case(f.content_type()))
            .or_else(|| {
                essence
                    .eq_ignore_ascii_case("image/jpg")
                    .then_some(ImageFormat::Jpeg)
            });
        match format {
            Some(f) if accepted.contains(f) => Ok(f),
            _ => Err(Error::UnsupportedContentType {
                content_type: content_type.to_owned(),
                accepted,
            }),
        }
    }

    /// The canonical media type.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::WebP => "image/webp",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Avif => "image/avif",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::WebP => "webp",
            ImageFormat::Gif => "gif",
            ImageFormat::Avif => "avif",
        }
    }

    /// The name in settings (`png`, `jpeg`, `webp`, `gif`).
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            other => other.extension(),
        }
    }

    /// Upper-case name for messages (`PNG`, `JPEG`, `WebP`, `GIF`).
    fn label(self) -> &'static str {
        match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::WebP => "WebP",
            ImageFormat::Gif => "GIF",
            ImageFormat::Avif => "AVIF",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            ImageFormat::Png => 1,
            ImageFormat::Jpeg => 2,
            ImageFormat::WebP => 4,
            ImageFormat::Gif => 8,
            ImageFormat::Avif => 16,
        }
    }
}

impl std::str::FromStr for ImageFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "png" => Ok(ImageFormat::Png),
            "jpeg" | "jpg" => Ok(ImageFormat::Jpeg),
            "webp" => Ok(ImageFormat::WebP),
            "gif" => Ok(ImageFormat::Gif),
            "avif" => Ok(ImageFormat::Avif),
            _ => Err(format!("unknown format {s:?}: use png, jpeg, webp or gif")),
        }
    }
}

/// The set of input formats a deployment accepts (the `accept_formats` setting). `Default`
/// is PNG and JPEG only; WebP and GIF are opt-in.
///
/// ```
/// use thumbcore::{ImageFormat, InputFormats};
///
/// let set: InputFormats = "png, jpeg, gif".parse().unwrap();
/// assert!(set.contains(ImageFormat::Gif) && !set.contains(ImageFormat::WebP));
/// assert_eq!(set.to_string(), "png,jpeg,gif");
/// assert_eq!(InputFormats::default().to_string(), "png,jpeg");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InputFormats(u8);

impl InputFormats {
    /// PNG and JPEG: what thumbd accepts unless configured otherwise.
    pub const DEFAULT: InputFormats =
        InputFormats(ImageFormat::Png.bit() | ImageFormat::Jpeg.bit());
    /// Every format thumbd can read.
    pub const ALL: InputFormats = InputFormats(0b1111);

    /// Whether `format` is in the set.
    pub fn contains(self, format: ImageFormat) -> bool {
        self.0 & format.bit() != 0
    }

    /// The set with `format` added.
    pub fn with(self, format: ImageFormat) -> InputFormats {
        InputFormats(self.0 | format.bit())
    }

    /// The formats in the set, in [`ImageFormat::INPUTS`] order.
    pub fn iter(self) -> impl Iterator<Item = ImageFormat> {
        ImageFormat::INPUTS
            .into_iter()
            .filter(move |f| self.contains(*f))
    }

    /// The media types of the set, for messages: `image/png or image/jpeg`.
    pub fn media_types(self) -> String {
        join_or(self.iter().map(ImageFormat::content_type).collect())
    }
}

impl Default for InputFormats {
    fn default() -> Self {
        InputFormats::DEFAULT
    }
}

impl std::fmt::Display for InputFormats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.iter().map(ImageFormat::name).collect();
        f.write_str(&names.join(","))
    }
}

impl std::str::FromStr for InputFormats {
    type Err = String;

    /// A comma-separated list of `png`, `jpeg` (or `jpg`), `webp`, `gif`; at least one.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut set = InputFormats(0);
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let format: ImageFormat = name.parse()?;
            if !ImageFormat::INPUTS.contains(&format) {
                return Err(format!(
                    "{name}: thumbd writes {} but does not read it; use png, jpeg, webp, gif",
                    format.label()
                ));
            }
            set = set.with(format);
        }
        if set.0 == 0 {
            return Err("name at least one format: png, jpeg, webp, gif".into());
        }
        Ok(set)
    }
}

/// `a`, `a or b`, `a, b or c`.
fn join_or(items: Vec<&str>) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// Checks that `bytes` really are what `content_type` declares and returns the format.
///
/// A declared type that is not one of `accepted` is [`Error::UnsupportedContentType`]
/// (`InvalidHeaderValue`); bytes that are not an accepted format, or are another one than
/// declared, are [`Error::InvalidFormat`].
pub fn check_declared_type(
    content_type: &str,
    bytes: &[u8],
    accepted: InputFormats,
) -> Result<ImageFormat> {
    let declared = ImageFormat::from_content_type(content_type, accepted)?;
    match ImageFormat::sniff(bytes) {
        Some(found) if found == declared => Ok(found),
        Some(found) if accepted.contains(found) => Err(Error::InvalidFormat(format!(
            "declared {} but the bytes are {}",
            declared.content_type(),
            found.content_type()
        ))),
        _ => Err(not_an_image(accepted)),
    }
}

/// The error for bytes that are none of the `accepted` formats (a format thumbd could read
/// but is not accepted is reported exactly like unknown bytes).
pub(crate) fn not_an_image(accepted: InputFormats) -> Error {
    let labels: Vec<_> = accepted.iter().map(ImageFormat::label).collect();
    let what = match labels.as_slice() {
        [one] => format!("not a {one}"),
        [a, b] => format!("neither a {a} nor a {b}"),
        _ => format!("not a {}", join_or(labels)),
    };
    Error::InvalidFormat(format!("the bytes are {what} image"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: InputFormats = InputFormats::DEFAULT;

    #[test]
    fn content_types() {
        assert_eq!(
            ImageFormat::from_content_type("image/png", DEFAULT),
            Ok(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::from_content_type("IMAGE/JPG", DEFAULT),
            Ok(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::from_content_type("image/jpeg; charset=binary", DEFAULT),
            Ok(ImageFormat::Jpeg)
        );
        for bad in ["image/gif", "image/webp", "", "text/plain", "image/pngx"] {
            let err = ImageFormat::from_content_type(bad, DEFAULT).unwrap_err();
            assert_eq!(err.code(), "InvalidHeaderValue", "{bad}");
        }
        assert_eq!(
            ImageFormat::from_content_type("image/gif", InputFormats::ALL),
            Ok(ImageFormat::Gif)
        );
        assert_eq!(
            ImageFormat::from_content_type("Image/WebP", InputFormats::ALL),
            Ok(ImageFormat::WebP)
        );
    }

    #[test]
    fn declared_vs_sniffed() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let jpg = b"\xFF\xD8\xFF\xE0";
        let check = |ct, bytes: &[u8]| check_declared_type(ct, bytes, DEFAULT);
        assert_eq!(check("image/png", png), Ok(ImageFormat::Png));
        assert_eq!(check("image/jpg", jpg), Ok(ImageFormat::Jpeg));
        assert_eq!(
            check("image/png", jpg).unwrap_err().code(),
            "InvalidThumbnailFormat"
        );
        let err = check("image/jpeg", b"GIF89a").unwrap_err();
        assert_eq!(err.code(), "InvalidThumbnailFormat");
        assert_eq!(
            err.to_string(),
            "the bytes are neither a PNG nor a JPEG image",
            "a GIF not accepted reads as unknown bytes, as before GIF could be read"
        );
        assert_eq!(
            check("image/gif", b"GIF89a").unwrap_err().code(),
            "InvalidHeaderValue"
        );
        let gif = DEFAULT.with(ImageFormat::Gif);
        assert_eq!(
            check_declared_type("image/gif", b"GIF89a", gif),
            Ok(ImageFormat::Gif)
        );
        assert_eq!(
            check_declared_type("image/webp", b"GIF89a", gif)
                .unwrap_err()
                .code(),
            "InvalidHeaderValue"
        );
    }

    #[test]
    fn sniffing() {
        assert_eq!(ImageFormat::sniff(b"GIF87a\x01\0"), Some(ImageFormat::Gif));
        assert_eq!(ImageFormat::sniff(b"GIF89a"), Some(ImageFormat::Gif));
        assert_eq!(ImageFormat::sniff(b"GIF90a"), None);
        assert_eq!(
            ImageFormat::sniff(b"RIFF\x10\0\0\0WEBPVP8L"),
            Some(ImageFormat::WebP)
        );
        assert_eq!(ImageFormat::sniff(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(ImageFormat::sniff(b"RIFF"), None);
    }

    #[test]
    fn input_format_sets() {
        let set: InputFormats = "gif,PNG, jpg".parse().unwrap();
        assert_eq!(set.to_string(), "png,jpeg,gif");
        assert_eq!(set.media_types(), "image/png, image/jpeg or image/gif");
        assert!("".parse::<InputFormats>().is_err());
        assert!("png,bmp".parse::<InputFormats>().is_err());
        assert_eq!(
            "png,jpeg,webp,gif".parse::<InputFormats>(),
            Ok(InputFormats::ALL)
        );
        assert_eq!(
            not_an_image(InputFormats::ALL).to_string(),
            "the bytes are not a PNG, JPEG, WebP or GIF image"
        );
        assert_eq!(
            not_an_image("png".parse().unwrap()).to_string(),
            "the bytes are not a PNG image"
        );
    }
}
