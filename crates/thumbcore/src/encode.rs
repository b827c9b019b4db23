//! Encoding the thumbnail (PNG, JPEG, lossy or lossless WebP) within a size budget.

use crate::decode::{PixelLayout, Pixels};
use crate::error::{Error, Result};
use crate::format::ImageFormat;
use crate::limits::Deadline;

/// What the size budget made the encoder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetStep {
    /// The first, fastest encoding was within budget (or there was no budget).
    Fits,
    /// Stronger compression was needed (PNG: best deflate with adaptive filters).
    Recompressed,
    /// Colours were quantised to a palette of this many entries.
    Quantized {
        /// Palette size.
        colors: u16,
    },
    /// JPEG or lossy WebP quality was lowered to this value.
    ReducedQuality {
        /// The quality used.
        quality: u8,
    },
    /// Nothing tried got under the budget; this is the smallest encoding found.
    Exceeded,
}

/// How to encode: format, quality and budget.
pub(crate) struct EncodeOptions {
    pub(crate) format: ImageFormat,
    pub(crate) jpeg_quality: u8,
    /// Lossy WebP at this quality; `None`: lossless.
    pub(crate) webp_quality: Option<u8>,
    /// AVIF's quality (ravif's 1–100 scale).
    pub(crate) avif_quality: u8,
    pub(crate) budget: Option<usize>,
}

/// Encodes `pixels` (gray, gray+alpha, RGB or RGBA), trying cheaper encodings first, and
/// no further step once `deadline` has passed.
pub(crate) fn encode(
    pixels: &Pixels,
    opts: &EncodeOptions,
    deadline: &Deadline,
) -> Result<(Vec<u8>, BudgetStep)> {
    let budget = opts.budget.unwrap_or(usize::MAX);
    let mut best = (
        encode_step(pixels, opts, BudgetStep::Fits)?,
        BudgetStep::Fits,
    );
    if best.0.len() <= budget {
        return Ok(best);
    }
    best.1 = BudgetStep::Exceeded;
    for step in fallbacks(opts) {
        deadline.check()?;
        let bytes = encode_step(pixels, opts, step)?;
        if bytes.len() <= budget {
            return Ok((bytes, step));
        }
        if bytes.len() < best.0.len() {
            best.0 = bytes;
        }
    }
    Ok(best)
}

/// What to try, in order, when the first encoding is over budget.
fn fallbacks(opts: &EncodeOptions) -> Vec<BudgetStep> {
    let palettes = [256, 64].map(|colors| BudgetStep::Quantized { colors });
    match opts.format {
        ImageFormat::Png => [BudgetStep::Recompressed]
            .into_iter()
            .chain(palettes)
            .collect(),
        ImageFormat::WebP => match opts.webp_quality {
            None => palettes.to_vec(),
            Some(q) => lower_qualities(q),
        },
        ImageFormat::Jpeg => lower_qualities(opts.jpeg_quality),
        ImageFormat::Avif => lower_qualities(opts.avif_quality),
        ImageFormat::Gif => Vec::new(),
    }
}

/// The quality ladder of the lossy formats, below `quality`.
fn lower_qualities(quality: u8) -> Vec<BudgetStep> {
    [70, 50, 30, 15]
        .into_iter()
        .filter(|&q| q < quality)
        .map(|quality| BudgetStep::ReducedQuality { quality })
        .collect()
}

/// One encoding: `Fits` is the first, fastest try; the other steps are the fallbacks.
fn encode_step(p: &Pixels, opts: &EncodeOptions, step: BudgetStep) -> Result<Vec<u8>> {
    match (opts.format, step) {
        (ImageFormat::Png, BudgetStep::Recompressed) => png(p, png::Compression::High),
        (ImageFormat::Png, BudgetStep::Quantized { colors }) => png_palette(&quantize(p, colors)),
        (ImageFormat::Png, _) => png(p, png::Compression::Fast),
        (ImageFormat::WebP, BudgetStep::Quantized { colors }) => {
            webp(&quantize(p, colors).to_rgba())
        }
        (ImageFormat::WebP, BudgetStep::ReducedQuality { quality }) => webp_lossy(p, quality),
        (ImageFormat::WebP, _) => match opts.webp_quality {
            None => webp(p),
            Some(quality) => webp_lossy(p, quality),
        },
        (ImageFormat::Jpeg, BudgetStep::ReducedQuality { quality }) => jpeg(p, quality),
        (ImageFormat::Jpeg, _) => jpeg(p, opts.jpeg_quality),
        (ImageFormat::Avif, BudgetStep::ReducedQuality { quality }) => avif(p, quality),
        (ImageFormat::Avif, _) => avif(p, opts.avif_quality),
        (ImageFormat::Gif, _) => Err(encode_error("GIF output is not supported")),
    }
}

/// rav1e's speed preset for thumbnails (0 slowest – 10 fastest). At 330 px, 8 costs about
/// three times 10 for files about a sixth smaller (benches/README.md, AVIF).
const AVIF_SPEED: u8 = 8;

/// AVIF through ravif: 8-bit, YCbCr 4:4:4, alpha kept when there is any; one thread.
fn avif(p: &Pixels, quality: u8) -> Result<Vec<u8>> {
    let encoder = ravif::Encoder::new()
        .with_quality(f32::from(quality))
        .with_alpha_quality(f32::from(quality))
        .with_speed(AVIF_SPEED)
        .with_num_threads(Some(1));
    let (w, h) = (p.width, p.height);
    let encoded = match p.layout {
        PixelLayout::Rgb => {
            let px: Vec<ravif::RGB8> = p
                .data
                .chunks_exact(3)
                .map(|c| ravif::RGB8::new(c[0], c[1], c[2]))
                .collect();
            encoder.encode_rgb(ravif::Img::new(&px[..], w, h))
        }
        PixelLayout::Rgba => {
            let px: Vec<ravif::RGBA8> = p
                .data
                .chunks_exact(4)
                .map(|c| ravif::RGBA8::new(c[0], c[1], c[2], c[3]))
                .collect();
            encoder.encode_rgba(ravif::Img::new(&px[..], w, h))
        }
        PixelLayout::Gray => {
            let px: Vec<ravif::RGB8> = p.data.iter().map(|&v| ravif::RGB8::new(v, v, v)).collect();
            encoder.encode_rgb(ravif::Img::new(&px[..], w, h))
        }
        PixelLayout::GrayAlpha => {
            let px: Vec<ravif::RGBA8> = p
                .data
                .chunks_exact(2)
                .map(|c| ravif::RGBA8::new(c[0], c[0], c[0], c[1]))
                .collect();
            encoder.encode_rgba(ravif::Img::new(&px[..], w, h))
        }
        PixelLayout::Cmyk { .. } => return Err(encode_error("CMYK reaches the encoder")),
    };
    encoded.map(|e| e.avif_file).map_err(encode_error)
}

fn encode_error(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("encoder: {e}"))
}

fn dims(p: &Pixels) -> Result<(u32, u32)> {
    let w = u32::try_from(p.width).map_err(encode_error)?;
    let h = u32::try_from(p.height).map_err(encode_error)?;
    Ok((w, h))
}

fn png(p: &Pixels, compression: png::Compression) -> Result<Vec<u8>> {
    let (w, h) = dims(p)?;
    let mut out = Vec::with_capacity(p.data.len() / 2);
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(match p.layout {
        PixelLayout::Gray => png::ColorType::Grayscale,
        PixelLayout::GrayAlpha => png::ColorType::GrayscaleAlpha,
        PixelLayout::Rgb => png::ColorType::Rgb,
        _ => png::ColorType::Rgba,
    });
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(compression);
    if matches!(compression, png::Compression::High) {
        enc.set_filter(png::Filter::Adaptive);
    }
    let mut writer = enc.write_header().map_err(encode_error)?;
    writer.write_image_data(&p.data).map_err(encode_error)?;
    writer.finish().map_err(encode_error)?;
    Ok(out)
}

/// A palette image: RGBA palette entries and one index per pixel.
struct Paletted {
    width: usize,
    height: usize,
    palette: Vec<u8>,
    indices: Vec<u8>,
}

impl Paletted {
    fn to_rgba(&self) -> Pixels {
        let data = self
            .indices
            .iter()
            .flat_map(|&i| &self.palette[usize::from(i) * 4..usize::from(i) * 4 + 4])
            .copied()
            .collect();
        Pixels {
            width: self.width,
            height: self.height,
            layout: PixelLayout::Rgba,
            data,
        }
    }
}

/// NeuQuant palette quantisation (deterministic for the same pixels).
fn quantize(p: &Pixels, colors: u16) -> Paletted {
    let rgba: Vec<u8> = match p.layout {
        PixelLayout::Rgba => p.data.clone(),
        PixelLayout::Rgb => p
            .data
            .chunks_exact(3)
            .flat_map(|c| [c[0], c[1], c[2], 255])
            .collect(),
        PixelLayout::GrayAlpha => p
            .data
            .chunks_exact(2)
            .flat_map(|c| [c[0], c[0], c[0], c[1]])
            .collect(),
        _ => p.data.iter().flat_map(|&g| [g, g, g, 255]).collect(),
    };
    let nq = color_quant::NeuQuant::new(10, usize::from(colors), &rgba);
    let indices = rgba
        .chunks_exact(4)
        .map(|px| u8::try_from(nq.index_of(px)).unwrap_or(u8::MAX))
        .collect();
    Paletted {
        width: p.width,
        height: p.height,
        palette: nq.color_map_rgba(),
        indices,
    }
}

fn png_palette(p: &Paletted) -> Result<Vec<u8>> {
    let w = u32::try_from(p.width).map_err(encode_error)?;
    let h = u32::try_from(p.height).map_err(encode_error)?;
    let rgb: Vec<u8> = p
        .palette
        .chunks_exact(4)
        .flat_map(|c| &c[..3])
        .copied()
        .collect();
    let alpha: Vec<u8> = p.palette.chunks_exact(4).map(|c| c[3]).collect();
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_palette(rgb);
    if alpha.iter().any(|&a| a != 255) {
        enc.set_trns(alpha);
    }
    enc.set_compression(png::Compression::High);
    let mut writer = enc.write_header().map_err(encode_error)?;
    writer.write_image_data(&p.indices).map_err(encode_error)?;
    writer.finish().map_err(encode_error)?;
    Ok(out)
}

/// Flattens alpha onto white: JPEG has no transparency.
fn flatten(p: &Pixels) -> (Vec<u8>, jpeg_encoder::ColorType) {
    let over_white = |c: u8, a: u8| {
        let v = u32::from(c) * u32::from(a) + 255 * (255 - u32::from(a));
        u8::try_from((v + 127) / 255).unwrap_or(255)
    };
    match p.layout {
        PixelLayout::Gray => (p.data.clone(), jpeg_encoder::ColorType::Luma),
        PixelLayout::GrayAlpha => (
            p.data
                .chunks_exact(2)
                .map(|c| over_white(c[0], c[1]))
                .collect(),
            jpeg_encoder::ColorType::Luma,
        ),
        PixelLayout::Rgba => (
            p.data
                .chunks_exact(4)
                .flat_map(|c| {
                    [
                        over_white(c[0], c[3]),
                        over_white(c[1], c[3]),
                        over_white(c[2], c[3]),
                    ]
                })
                .collect(),
            jpeg_encoder::ColorType::Rgb,
        ),
        _ => (p.data.clone(), jpeg_encoder::ColorType::Rgb),
    }
}

fn jpeg(p: &Pixels, quality: u8) -> Result<Vec<u8>> {
    let w = u16::try_from(p.width).map_err(encode_error)?;
    let h = u16::try_from(p.height).map_err(encode_error)?;
    let (data, color) = flatten(p);
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(&data, w, h, color)
        .map_err(encode_error)?;
    Ok(out)
}

fn webp(p: &Pixels) -> Result<Vec<u8>> {
    let (w, h) = dims(p)?;
    let color = match p.layout {
        PixelLayout::Gray => image_webp::ColorType::L8,
        PixelLayout::GrayAlpha => image_webp::ColorType::La8,
        PixelLayout::Rgb => image_webp::ColorType::Rgb8,
        _ => image_webp::ColorType::Rgba8,
    };
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(&p.data, w, h, color)
        .map_err(encode_error)?;
    Ok(out)
}

/// Lossy WebP through libwebp (its default configuration: method 4, one thread, so the same
/// pixels give the same bytes), at `quality` 1–100. Gray is written as RGB: WebP has no
/// gray mode.
fn webp_lossy(p: &Pixels, quality: u8) -> Result<Vec<u8>> {
    let (w, h) = dims(p)?;
    let (data, layout) = match p.layout {
        PixelLayout::Gray => (
            std::borrow::Cow::Owned(p.data.iter().flat_map(|&g| [g, g, g]).collect()),
            webp::PixelLayout::Rgb,
        ),
        PixelLayout::GrayAlpha => (
            std::borrow::Cow::Owned(
                p.data
                    .chunks_exact(2)
                    .flat_map(|c| [c[0], c[0], c[0], c[1]])
                    .collect(),
            ),
            webp::PixelLayout::Rgba,
        ),
        PixelLayout::Rgb => (std::borrow::Cow::Borrowed(&p.data), webp::PixelLayout::Rgb),
        _ => (std::borrow::Cow::Borrowed(&p.data), webp::PixelLayout::Rgba),
    };
    let out = webp::Encoder::new(&data, layout, w, h)
        .encode_simple(false, f32::from(quality.clamp(1, 100)))
        .map_err(|e| encode_error(format!("{e:?}")))?;
    Ok(out.to_vec())
}
