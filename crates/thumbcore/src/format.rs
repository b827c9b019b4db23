//! Input and output formats: sniffing the bytes, and matching a declared `Content-Type`.

use crate::error::{Error, Result};

/// An image format thumbd reads (PNG, JPEG) or writes (PNG, JPEG, WebP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// Portable Network Graphics.
    Png,
    /// JPEG (JFIF/EXIF).
    Jpeg,
    /// WebP (written lossless; never accepted as input).
    WebP,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

impl ImageFormat {
    /// Sniffs the format from the first bytes; only PNG and JPEG are recognised as inputs.
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        if bytes.starts_with(PNG_SIGNATURE) {
            Some(ImageFormat::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageFormat::Jpeg)
        } else {
            None
        }
    }

    /// The format a `Content-Type` value declares, if it is one thumbd accepts as input:
    /// `image/png`, `image/jpeg` or its alias `image/jpg` (case-insensitive, parameters
    /// ignored). Anything else, WebP included, is [`Error::UnsupportedContentType`].
    pub fn from_content_type(content_type: &str) -> Result<ImageFormat> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("image/png") {
            Ok(ImageFormat::Png)
        } else if essence.eq_ignore_ascii_case("image/jpeg")
            || essence.eq_ignore_ascii_case("image/jpg")
        {
            Ok(ImageFormat::Jpeg)
        } else {
            Err(Error::UnsupportedContentType(content_type.to_owned()))
        }
    }

    /// The canonical media type.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::WebP => "image/webp",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::WebP => "webp",
        }
    }
}

impl std::str::FromStr for ImageFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Ok(ImageFormat::Png),
            "jpeg" | "jpg" => Ok(ImageFormat::Jpeg),
            "webp" => Ok(ImageFormat::WebP),
            _ => Err(format!("unknown format {s:?}: use png, jpeg or webp")),
        }
    }
}

/// Checks that `bytes` really are what `content_type` declares and returns the format.
///
/// An unsupported declared type is [`Error::UnsupportedContentType`]; bytes that are not
/// PNG/JPEG, or are the other one of the two, are [`Error::InvalidFormat`].
pub fn check_declared_type(content_type: &str, bytes: &[u8]) -> Result<ImageFormat> {
    let declared = ImageFormat::from_content_type(content_type)?;
    match ImageFormat::sniff(bytes) {
        Some(found) if found == declared => Ok(found),
        Some(found) => Err(Error::InvalidFormat(format!(
            "declared {} but the bytes are {}",
            declared.content_type(),
            found.content_type()
        ))),
        None => Err(not_an_image()),
    }
}

pub(crate) fn not_an_image() -> Error {
    Error::InvalidFormat("the bytes are neither a PNG nor a JPEG image".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            ImageFormat::from_content_type("image/png"),
            Ok(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::from_content_type("IMAGE/JPG"),
            Ok(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::from_content_type("image/jpeg; charset=binary"),
            Ok(ImageFormat::Jpeg)
        );
        for bad in ["image/gif", "image/webp", "", "text/plain", "image/pngx"] {
            let err = ImageFormat::from_content_type(bad).unwrap_err();
            assert_eq!(err.code(), "InvalidHeaderValue", "{bad}");
        }
    }

    #[test]
    fn declared_vs_sniffed() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let jpg = b"\xFF\xD8\xFF\xE0";
        assert_eq!(check_declared_type("image/png", png), Ok(ImageFormat::Png));
        assert_eq!(check_declared_type("image/jpg", jpg), Ok(ImageFormat::Jpeg));
        assert_eq!(
            check_declared_type("image/png", jpg).unwrap_err().code(),
            "InvalidThumbnailFormat"
        );
        assert_eq!(
            check_declared_type("image/jpeg", b"GIF89a")
                .unwrap_err()
                .code(),
            "InvalidThumbnailFormat"
        );
        assert_eq!(
            check_declared_type("image/gif", b"GIF89a")
                .unwrap_err()
                .code(),
            "InvalidHeaderValue"
        );
    }
}
