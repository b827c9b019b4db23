//! `Thumbnailer`: the pipeline from bytes to thumbnail, with reusable decoder and resizer.

use std::sync::Mutex;

use rayon::prelude::*;

use crate::color;
use crate::decode::{JpegDecoder, Pixels, decode_gif, decode_png, decode_webp};
use crate::encode::{self, BudgetStep, EncodeOptions};
use crate::error::Result;
use crate::format::ImageFormat;
use crate::geometry::{dct_scale, fit};
use crate::limits::{Deadline, Limits};
use crate::orientation;
use crate::output::Output;
use crate::placeholder::Placeholder;
use crate::probe::ImageInfo;
use crate::profile::Rendition;
use crate::resize::{ResizeSpace, resize, resize_ref};

/// What thumbnail to make. `Default` is README's image rules: PNG inside 330×330, 300 KB budget.
#[derive(Debug, Clone, PartialEq)]
pub struct ThumbSpec {
    /// Largest output width. Default 330.
    pub max_width: u32,
    /// Largest output height. Default 330.
    pub max_height: u32,
    /// Output format. Default PNG (JPEG inputs become PNG too).
    pub format: ImageFormat,
    /// JPEG output quality, 1–100. Default 85.
    pub jpeg_quality: u8,
    /// WebP output: lossy at this quality (1–100, libwebp's scale), or lossless when
    /// `None`. Default `Some(80)`. See [`Output`](crate::Output) for the `webp:lossless`
    /// form settings use.
    pub webp_quality: Option<u8>,
    /// Size to aim under, in bytes; `None` for no budget. Default 300 000.
    pub budget_bytes: Option<usize>,
    /// The space the resize averages in. Default sRGB.
    pub resize_space: ResizeSpace,
    /// Input limits, checked before any pixel is decoded, and the time limit.
    pub limits: Limits,
}

impl Default for ThumbSpec {
    fn default() -> Self {
        ThumbSpec {
            max_width: 330,
            max_height: 330,
            format: ImageFormat::Png,
            jpeg_quality: 85,
            webp_quality: Some(80),
            budget_bytes: Some(300_000),
            resize_space: ResizeSpace::Srgb,
            limits: Limits::default(),
        }
    }
}

impl ThumbSpec {
    /// This spec with the box a set of `renditions` is decoded for (what
    /// [`Thumbnailer::render`] decodes with, and what to ask
    /// [`decode_cost`](Self::decode_cost) about): as wide as the widest rendition's box and
    /// as high as the highest's, so the DCT scale leaves ≥ 2× for every rendition.
    #[must_use]
    pub fn fitting(&self, renditions: &[Rendition]) -> ThumbSpec {
        ThumbSpec {
            max_width: renditions
                .iter()
                .map(|r| r.width)
                .max()
                .unwrap_or(self.max_width),
            max_height: renditions
                .iter()
                .map(|r| r.height)
                .max()
                .unwrap_or(self.max_height),
            ..self.clone()
        }
    }

    /// How many pixels the decoder outputs for an image with this header: the DCT-reduced
    /// size for JPEG, the full size for PNG. See [`decode_cost`](Self::decode_cost) for the
    /// bytes it holds.
    pub fn decoded_pixels(&self, info: &ImageInfo) -> u64 {
        match info.format {
            ImageFormat::Jpeg => {
                let (w, h) = self.jpeg_decoded_size(info);
                w * h
            }
            _ => info.pixels(),
        }
    }

    fn jpeg_decoded_size(&self, info: &ImageInfo) -> (u64, u64) {
        let output = fit(info.width, info.height, self.max_width, self.max_height);
        let denom = u64::from(dct_scale(
            (info.stored_width, info.stored_height),
            stored(output, info),
        ));
        (
            u64::from(info.stored_width).div_ceil(denom),
            u64::from(info.stored_height).div_ceil(denom),
        )
    }

    /// Bytes that thumbnailing an image with this header holds at its peak: the decoded
    /// pixels (JPEG: at the reduced DCT scale), the decoder's own buffers
    /// ([`ImageInfo::working_bytes`]: libjpeg's full-size coefficient buffers for a
    /// progressive or multi-scan JPEG, to which the decoder is held; a GIF's frame; WebP's
    /// planes), for an image with alpha the premultiplied copy the resizer makes, and
    /// the resizer's intermediate image (output width × decoded height); in linear light,
    /// the 16-bit copy of the decoded image too, and twice the bytes for the other two.
    /// Workers admit jobs against a budget of these, so a burst of large images queues
    /// instead of exhausting memory. Small buffers (the thumbnail, tables, rows) are not
    /// counted.
    pub fn decode_cost(&self, info: &ImageInfo) -> u64 {
        let channels = u64::from(info.channels.clamp(1, 4));
        let output = stored(
            fit(info.width, info.height, self.max_width, self.max_height),
            info,
        );
        let (w, h) = match info.format {
            ImageFormat::Jpeg => self.jpeg_decoded_size(info),
            _ => (u64::from(info.stored_width), u64::from(info.stored_height)),
        };
        let pixels = w * h * channels;
        // Four JPEG channels are CMYK, not alpha.
        let has_alpha = channels % 2 == 0 && info.format != ImageFormat::Jpeg;
        // Linear light resizes a 16-bit copy of the decoded image (CMYK is never mapped).
        let cmyk = info.format == ImageFormat::Jpeg && channels == 4;
        let linear = self.resize_space == ResizeSpace::Linear && !cmyk;
        let sample = if linear { 2 } else { 1 };
        let wide = if linear { 2 * pixels } else { 0 };
        let premultiplied = if has_alpha { pixels * sample } else { 0 };
        let intermediate = u64::from(output.0) * h * channels * sample;
        pixels + wide + premultiplied + intermediate + info.working_bytes()
    }
}

/// A finished thumbnail.
#[derive(Debug, Clone, PartialEq)]
pub struct Thumbnail {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// Output format; see [`Thumbnail::content_type`].
    pub format: ImageFormat,
    /// What the size budget made the encoder do.
    pub budget: BudgetStep,
    /// The probed input.
    pub source: ImageInfo,
    /// What to paint while the thumbnail loads (from its own pixels).
    pub placeholder: Placeholder,
}

impl Thumbnail {
    /// The media type of [`bytes`](Thumbnail::bytes).
    pub fn content_type(&self) -> &'static str {
        self.format.content_type()
    }
}

/// Makes thumbnails, reusing its JPEG decompressor, resizer buffers and last decode buffer
/// between calls.
///
/// One per thread: it is `Send` but not `Sync`. [`thumbnail_batch`] keeps one per rayon
/// worker.
pub struct Thumbnailer {
    jpeg: Option<JpegDecoder>,
    resizer: fast_image_resize::Resizer,
    /// The full-size decode buffer of the last image, kept for the next decode (a fresh one
    /// costs a page fault per 4 KiB) when its capacity is at most `spare_limit` bytes.
    spare: Option<Vec<u8>>,
    spare_limit: usize,
}

impl Default for Thumbnailer {
    fn default() -> Self {
        Thumbnailer {
            jpeg: None,
            resizer: fast_image_resize::Resizer::default(),
            spare: None,
            spare_limit: Self::DEFAULT_SPARE_LIMIT,
        }
    }
}

impl std::fmt::Debug for Thumbnailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thumbnailer").finish_non_exhaustive()
    }
}

impl Thumbnailer {
    /// The largest decode buffer a thumbnailer keeps between images unless told otherwise:
    /// 64 MiB (a 4096×4096 RGBA image).
    pub const DEFAULT_SPARE_LIMIT: usize = 64 << 20;

    /// A new thumbnailer; the JPEG decompressor is created on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps a decode buffer between images only up to `bytes` of capacity (0: never), so
    /// that many thumbnailers do not hold more memory than their owner budgets for.
    pub fn set_spare_limit(&mut self, bytes: usize) {
        self.spare_limit = bytes;
        if self.spare.as_ref().is_some_and(|s| s.capacity() > bytes) {
            self.spare = None;
        }
    }

    /// Makes the thumbnail of `bytes` as `spec` says: [`decode`](Self::decode), then
    /// [`resize`](Self::resize), then [`encode`](Self::encode).
    ///
    /// The whole call is held to [`Limits::max_duration`]: the decoders check the clock as
    /// they go, and the stages check it between them.
    pub fn thumbnail(&mut self, bytes: &[u8], spec: &ThumbSpec) -> Result<Thumbnail> {
        let rendition = Rendition {
            width: spec.max_width,
            height: spec.max_height,
            output: Output::of(spec),
        };
        let set = self.render(bytes, spec, &[rendition])?;
        let one = set
            .renditions
            .into_iter()
            .next()
            .expect("one rendition asked");
        Ok(Thumbnail {
            bytes: one.bytes,
            width: one.width,
            height: one.height,
            format: one.rendition.output.format,
            budget: one.budget,
            source: set.source,
            placeholder: set.placeholder,
        })
    }

    /// Makes every rendition in `renditions` from one decode of `bytes`: decoded once at
    /// the DCT scale the largest needs, each distinct size resized once (from a larger
    /// size when that one is at least twice as large on both sides, so the same ≥ 2× rule
    /// as the decode keeps the quality; else from the decode), each format encoded within
    /// `spec.budget_bytes`. `spec`'s box and format are ignored: the renditions say them.
    /// The placeholder comes from the largest size. The whole call is held to
    /// [`Limits::max_duration`].
    pub fn render(
        &mut self,
        bytes: &[u8],
        spec: &ThumbSpec,
        renditions: &[Rendition],
    ) -> Result<RenditionSet> {
        self.render_with(bytes, spec, renditions, false)
    }

    /// [`render`](Self::render), except that AVIF renditions are not encoded: each is
    /// returned [`deferred`](Rendered::deferred), its bytes a fast lossless PNG of exactly
    /// the pixels the encoder would have taken. Rendering that PNG later with the same
    /// rendition at its own size gives the AVIF this call would have made, so the slow
    /// encoder can run after the job (a background lane) with no second decode.
    pub fn render_deferring_avif(
        &mut self,
        bytes: &[u8],
        spec: &ThumbSpec,
        renditions: &[Rendition],
    ) -> Result<RenditionSet> {
        self.render_with(bytes, spec, renditions, true)
    }

    fn render_with(
        &mut self,
        bytes: &[u8],
        spec: &ThumbSpec,
        renditions: &[Rendition],
        defer_avif: bool,
    ) -> Result<RenditionSet> {
        let deadline = Deadline::start(&spec.limits);
        let decode_spec = spec.fitting(renditions);
        let frame = self.decode_until(bytes, &decode_spec, &deadline)?;
        deadline.check()?;
        let info = frame.info.clone();
        // Each distinct upright size, largest first.
        let mut sizes: Vec<(u32, u32)> = renditions
            .iter()
            .map(|r| fit(info.width, info.height, r.width, r.height))
            .collect();
        sizes.sort_unstable_by(|a, b| b.cmp(a));
        sizes.dedup();
        let mut made: Vec<((u32, u32), Pixels)> = Vec::with_capacity(sizes.len());
        for &size in &sizes {
            let cascade = made
                .iter()
                .rev()
                .find(|(s, _)| s.0 >= 2 * size.0 && s.1 >= 2 * size.1);
            let pixels = match cascade {
                Some((_, larger)) => resize_ref(
                    &mut self.resizer,
                    larger,
                    size.0 as usize,
                    size.1 as usize,
                    (larger.width as f64, larger.height as f64),
                    spec.resize_space,
                )?,
                None => self.resize_decoded(&frame, size)?,
            };
            deadline.check()?;
            made.push((size, pixels));
        }
        self.keep_buffers(frame.pixels.data);
        let placeholder = crate::placeholder::placeholder(&made[0].1);
        let mut out = Vec::with_capacity(renditions.len());
        for (r, size) in renditions
            .iter()
            .map(|r| (r, fit(info.width, info.height, r.width, r.height)))
        {
            let pixels = &made.iter().find(|(s, _)| *s == size).expect("made above").1;
            let deferred = defer_avif && r.output.format == ImageFormat::Avif;
            let format = if deferred {
                ImageFormat::Png
            } else {
                r.output.format
            };
            let (bytes, budget) = encode::encode(
                pixels,
                &EncodeOptions {
                    format,
                    jpeg_quality: r.output.quality.unwrap_or(Output::JPEG_QUALITY),
                    webp_quality: r.output.quality,
                    avif_quality: r.output.quality.unwrap_or(Output::AVIF_QUALITY),
                    // A deferred rendition's source is exact: never quantised.
                    budget: if deferred { None } else { spec.budget_bytes },
                },
                &deadline,
            )?;
            out.push(Rendered {
                rendition: *r,
                bytes,
                width: size.0,
                height: size.1,
                budget,
                deferred,
            });
        }
        Ok(RenditionSet {
            renditions: out,
            source: info,
            placeholder,
        })
    }

    /// Encodes a [`deferred`](Rendered::deferred) rendition: `source` is its lossless PNG,
    /// `output` the rendition's format. Gives the bytes [`render`](Self::render) would have
    /// made for it, within `spec.budget_bytes` and the time limit (`spec.limits`; no
    /// minimum size: the source is a thumbnail already).
    pub fn encode_deferred(
        source: &[u8],
        output: Output,
        spec: &ThumbSpec,
    ) -> Result<(Vec<u8>, BudgetStep)> {
        let deadline = Deadline::start(&spec.limits);
        if ImageFormat::sniff(source) != Some(ImageFormat::Png) {
            return Err(crate::Error::InvalidFormat(
                "a deferred rendition's source is a PNG".into(),
            ));
        }
        let decoded = decode_png(source, &spec.limits, None, &deadline)?;
        encode::encode(
            &decoded.pixels,
            &EncodeOptions {
                format: output.format,
                jpeg_quality: output.quality.unwrap_or(Output::JPEG_QUALITY),
                webp_quality: output.quality,
                avif_quality: output.quality.unwrap_or(Output::AVIF_QUALITY),
                budget: spec.budget_bytes,
            },
            &deadline,
        )
    }

    /// The decoded `frame` resized to `size` (upright), in sRGB, opaque alpha dropped,
    /// oriented; the frame is left as it is.
    fn resize_decoded(&mut self, frame: &Frame, size: (u32, u32)) -> Result<Pixels> {
        let (w, h) = stored(size, &frame.info);
        #[allow(clippy::cast_precision_loss)] // image sides are far below 2^52
        let whole = (frame.pixels.width as f64, frame.pixels.height as f64);
        let resized = if (frame.pixels.width, frame.pixels.height) == (w as usize, h as usize)
            && frame.extent == whole
        {
            Pixels {
                width: frame.pixels.width,
                height: frame.pixels.height,
                layout: frame.pixels.layout,
                data: frame.pixels.data.clone(),
            }
        } else {
            resize_ref(
                &mut self.resizer,
                &frame.pixels,
                w as usize,
                h as usize,
                frame.extent,
                frame.space,
            )?
        };
        upright_srgb(resized, frame.icc.as_deref(), &frame.info)
    }

    /// Keeps the resizer's buffers and the decode buffer `spare` for the next image, as
    /// far as [`set_spare_limit`](Self::set_spare_limit) allows.
    fn keep_buffers(&mut self, spare: Vec<u8>) {
        // The resizer keeps its buffers (for an image with alpha, a premultiplied copy of the
        // whole decoded image) for the next call: no more of them than a spare buffer.
        if self.resizer.size_of_internal_buffers() > self.spare_limit {
            self.resizer.reset_internal_buffers();
        }
        if spare.capacity() <= self.spare_limit && spare.capacity() > 0 {
            self.spare = Some(spare);
        }
    }

    /// Stage 1: checks the format against [`Limits::accept_formats`] and the limits from the
    /// header, then decodes (GIF and animated WebP: the first frame). JPEG is decoded at the
    /// smallest DCT scale that is still twice the output size on both sides. Held to
    /// [`Limits::max_duration`] on its own.
    pub fn decode(&mut self, bytes: &[u8], spec: &ThumbSpec) -> Result<Frame> {
        self.decode_until(bytes, spec, &Deadline::start(&spec.limits))
    }

    fn decode_until(
        &mut self,
        bytes: &[u8],
        spec: &ThumbSpec,
        deadline: &Deadline,
    ) -> Result<Frame> {
        spec.limits.check_input_len(bytes.len())?;
        let info = spec.limits.probe(bytes)?;
        spec.limits.check(&info)?;
        let output = fit(info.width, info.height, spec.max_width, spec.max_height);
        let mut denom = 1;
        let decoded = match info.format {
            ImageFormat::Jpeg => {
                denom = dct_scale(
                    (info.stored_width, info.stored_height),
                    stored(output, &info),
                );
                let decoder = match &mut self.jpeg {
                    Some(d) => d,
                    slot => slot.insert(JpegDecoder::new(&spec.limits)?),
                };
                decoder.decode(
                    bytes,
                    denom,
                    self.spare.take(),
                    info.coefficient_bytes(),
                    deadline,
                )?
            }
            ImageFormat::Png => decode_png(bytes, &spec.limits, self.spare.take(), deadline)?,
            ImageFormat::WebP => decode_webp(bytes, &info, self.spare.take(), deadline)?,
            ImageFormat::Gif => decode_gif(bytes, &info, self.spare.take(), deadline)?,
            // Never sniffed, so never probed: thumbd writes AVIF, it does not read it.
            ImageFormat::Avif => {
                return Err(crate::Error::InvalidFormat("AVIF input is not read".into()));
            }
        };
        let extent = (
            f64::from(info.stored_width) / f64::from(denom),
            f64::from(info.stored_height) / f64::from(denom),
        );
        Ok(Frame {
            pixels: decoded.pixels,
            icc: decoded.icc,
            info,
            output,
            extent,
            space: spec.resize_space,
        })
    }

    /// Stage 2: Lanczos3 to the output size, then (on the small image) colour to sRGB,
    /// opaque alpha dropped, and EXIF orientation applied.
    pub fn resize(&mut self, frame: Frame) -> Result<Frame> {
        let (w, h) = stored(frame.output, &frame.info);
        let (resized, done) = resize(
            &mut self.resizer,
            frame.pixels,
            w as usize,
            h as usize,
            frame.extent,
            frame.space,
        )?;
        self.keep_buffers(done.unwrap_or_default());
        let pixels = upright_srgb(resized, frame.icc.as_deref(), &frame.info)?;
        let (width, height) = (pixels.width, pixels.height);
        Ok(Frame {
            pixels,
            icc: None,
            info: frame.info,
            output: frame.output,
            extent: (f64::from(to_u32(width)), f64::from(to_u32(height))),
            space: frame.space,
        })
    }

    /// Stage 3: encodes a resized frame within the size budget, held to
    /// [`Limits::max_duration`] on its own (checked between the budget's steps).
    pub fn encode(frame: Frame, spec: &ThumbSpec) -> Result<Thumbnail> {
        encode_frame(frame, spec, &Deadline::start(&spec.limits))
    }
}

/// A resized image made upright and sRGB: colour converted with `icc` (and CMYK to RGB),
/// opaque alpha dropped, EXIF orientation applied.
fn upright_srgb(resized: Pixels, icc: Option<&[u8]>, info: &ImageInfo) -> Result<Pixels> {
    let srgb = color::strip_opaque_alpha(color::to_srgb(resized, icc)?);
    let channels = srgb.layout.channels();
    let (data, width, height) = orientation::apply(
        srgb.data,
        srgb.width,
        srgb.height,
        channels,
        info.orientation,
    );
    Ok(Pixels {
        width,
        height,
        layout: srgb.layout,
        data,
    })
}

/// One made rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// What was asked.
    pub rendition: Rendition,
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Its width (upright).
    pub width: u32,
    /// Its height (upright).
    pub height: u32,
    /// What the size budget made the encoder do.
    pub budget: BudgetStep,
    /// Not encoded yet ([`Thumbnailer::render_deferring_avif`]): `bytes` are a lossless
    /// PNG of the rendition's pixels.
    pub deferred: bool,
}

/// What [`Thumbnailer::render`] makes: the renditions in the order asked, the probed
/// source and one placeholder.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionSet {
    /// One per rendition asked, in that order.
    pub renditions: Vec<Rendered>,
    /// The probed input.
    pub source: ImageInfo,
    /// What to paint while a rendition loads (from the largest size's pixels).
    pub placeholder: Placeholder,
}

/// An image between pipeline stages (see [`Thumbnailer::decode`]).
#[derive(Debug)]
pub struct Frame {
    pixels: Pixels,
    icc: Option<Vec<u8>>,
    info: ImageInfo,
    /// The final thumbnail size, upright.
    output: (u32, u32),
    /// How many of `pixels`' columns and rows the picture covers: fewer than there are
    /// when a DCT-scaled decode rounded its size up (see [`Thumbnailer::resize`]).
    extent: (f64, f64),
    /// What [`Thumbnailer::resize`] averages in.
    space: ResizeSpace,
}

impl Frame {
    /// Current width and height in pixels (as stored until [`Thumbnailer::resize`]).
    pub fn size(&self) -> (usize, usize) {
        (self.pixels.width, self.pixels.height)
    }

    /// The probed source image.
    pub fn info(&self) -> &ImageInfo {
        &self.info
    }
}

fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// The output size in stored coordinates: resizing happens before orientation.
fn stored(output: (u32, u32), info: &ImageInfo) -> (u32, u32) {
    if info.orientation.swaps_axes() {
        (output.1, output.0)
    } else {
        output
    }
}

fn encode_frame(frame: Frame, spec: &ThumbSpec, deadline: &Deadline) -> Result<Thumbnail> {
    let (bytes, budget) = encode::encode(
        &frame.pixels,
        &EncodeOptions {
            format: spec.format,
            jpeg_quality: spec.jpeg_quality,
            webp_quality: spec.webp_quality,
            avif_quality: Output::AVIF_QUALITY,
            budget: spec.budget_bytes,
        },
        deadline,
    )?;
    Ok(Thumbnail {
        bytes,
        width: frame.output.0,
        height: frame.output.1,
        format: spec.format,
        budget,
        placeholder: crate::placeholder::placeholder(&frame.pixels),
        source: frame.info,
    })
}

/// Thumbnails many inputs in parallel on rayon's pool, one [`Thumbnailer`] per worker
/// thread for the whole call (so its buffers serve every image that thread takes). Results
/// come back in input order.
pub fn thumbnail_batch<T: AsRef<[u8]> + Sync>(
    inputs: &[T],
    spec: &ThumbSpec,
) -> Vec<Result<Thumbnail>> {
    let per_thread: Vec<Mutex<Thumbnailer>> = (0..rayon::current_num_threads())
        .map(|_| Mutex::new(Thumbnailer::new()))
        .collect();
    inputs
        .par_iter()
        .map(|input| {
            // Only this worker thread takes this slot: never contended.
            let slot = rayon::current_thread_index().unwrap_or(0) % per_thread.len();
            per_thread[slot]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .thumbnail(input.as_ref(), spec)
        })
        .collect()
}
