//! JPEG through the system libjpeg-turbo, with DCT-domain downscaling.
//!
//! All libjpeg calls happen in `csrc/tdjpeg.c`, which owns the `setjmp` that libjpeg's error
//! handling needs; this module only sees return codes. It is the one place in thumbcore
//! with `unsafe`, and each block is a call whose pointers come from live Rust borrows.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_long, c_uint, c_ulong};
use std::ptr::NonNull;

use super::{Decoded, PixelLayout, Pixels};
use crate::error::{Error, Result, zeroed_in};
use crate::limits::{DECODER_SLACK, Deadline, Limits};

#[repr(C)]
struct Tdj {
    _private: [u8; 0],
}

#[repr(C)]
#[derive(Default)]
struct TdjInfo {
    image_width: c_uint,
    image_height: c_uint,
    output_width: c_uint,
    output_height: c_uint,
    output_components: c_int,
    jpeg_color_space: c_int,
    saw_adobe_marker: c_int,
    progressive: c_int,
    icc: Option<NonNull<u8>>,
    icc_len: c_uint,
}

unsafe extern "C" {
    fn tdj_new(max_memory: c_ulong, max_scans: c_int) -> *mut Tdj;
    fn tdj_free(h: *mut Tdj);
    fn tdj_free_icc(icc: *mut u8);
    fn tdj_message(h: *const Tdj) -> *const c_char;
    fn tdj_premature_eof(h: *const Tdj) -> c_int;
    fn tdj_timed_out(h: *const Tdj) -> c_int;
    fn tdj_abort(h: *mut Tdj);
    fn tdj_read_header(
        h: *mut Tdj,
        data: *const u8,
        len: c_ulong,
        scale_denom: c_int,
        want_icc: c_int,
        info: *mut TdjInfo,
    ) -> c_int;
    fn tdj_decode(
        h: *mut Tdj,
        out: *mut u8,
        stride: c_ulong,
        out_len: c_ulong,
        max_memory: c_ulong,
        budget_ms: c_long,
    ) -> c_int;
}

/// libjpeg's `J_COLOR_SPACE` values we need to tell apart.
const JCS_YCCK: c_int = 5;
const JCS_CMYK: c_int = 4;

/// Scans beyond this are refused (real encoders write ≤ ~20; each costs a pass over every
/// coefficient block of its components).
const MAX_SCANS: c_int = 500;

/// A reusable libjpeg decompressor.
pub(crate) struct JpegDecoder {
    handle: NonNull<Tdj>,
    /// Upper bound of every decode's coefficient memory ([`Limits::decoder_memory`]).
    max_memory: usize,
}

// SAFETY: the handle is owned by this value and only used through `&mut self`; libjpeg keeps
// no thread-local state, so moving the decompressor to another thread is sound.
unsafe impl Send for JpegDecoder {}

impl JpegDecoder {
    pub(crate) fn new(limits: &Limits) -> Result<Self> {
        let max_memory = c_ulong::try_from(limits.decoder_memory()).unwrap_or(c_ulong::MAX);
        // SAFETY: plain constructor; a null return is handled.
        let handle = unsafe { tdj_new(max_memory, MAX_SCANS) };
        NonNull::new(handle)
            .map(|handle| JpegDecoder {
                handle,
                max_memory: limits.decoder_memory(),
            })
            .ok_or_else(|| Error::Internal("cannot create a JPEG decompressor".into()))
    }

    fn message(&self) -> String {
        // SAFETY: tdj_message returns a pointer to a NUL-terminated buffer inside the handle,
        // valid until the next call on it; we copy it out at once.
        unsafe { CStr::from_ptr(tdj_message(self.handle.as_ptr())) }
            .to_string_lossy()
            .into_owned()
    }

    /// Decodes `bytes` at 1/`scale_denom` of full size (1, 2, 4 or 8), into `spare` when it
    /// is large enough. libjpeg may hold `coefficient_bytes` (from the probe) plus
    /// [`DECODER_SLACK`] in coefficient buffers, and must finish by `deadline`.
    pub(crate) fn decode(
        &mut self,
        bytes: &[u8],
        scale_denom: u8,
        spare: Option<Vec<u8>>,
        coefficient_bytes: u64,
        deadline: &Deadline,
    ) -> Result<Decoded> {
        let len = c_ulong::try_from(bytes.len()).map_err(|_| Error::corrupt("input too large"))?;
        let mut info = TdjInfo::default();
        // SAFETY: `bytes` outlives both calls below (libjpeg reads it until tdj_decode
        // returns or the decoder is aborted); `info` is a valid out-pointer.
        let rc = unsafe {
            tdj_read_header(
                self.handle.as_ptr(),
                bytes.as_ptr(),
                len,
                c_int::from(scale_denom),
                1,
                &mut info,
            )
        };
        if rc != 0 {
            return Err(Error::corrupt(self.message()));
        }
        let icc = info.icc.map(|p| {
            // SAFETY: libjpeg malloc'd `icc_len` bytes at `p`; we copy and free them once.
            let copy =
                unsafe { std::slice::from_raw_parts(p.as_ptr(), info.icc_len as usize) }.to_vec();
            unsafe { tdj_free_icc(p.as_ptr()) };
            copy
        });
        let layout = match info.output_components {
            1 => PixelLayout::Gray,
            3 => PixelLayout::Rgb,
            4 if matches!(info.jpeg_color_space, JCS_CMYK | JCS_YCCK) => PixelLayout::Cmyk {
                inverted: info.saw_adobe_marker != 0,
            },
            n => {
                self.abort();
                return Err(Error::corrupt(format!(
                    "unsupported JPEG with {n} output channels"
                )));
            }
        };
        let (width, height) = (info.output_width as usize, info.output_height as usize);
        let stride = width * layout.channels();
        let mut data = match stride.checked_mul(height).map(|len| zeroed_in(spare, len)) {
            Some(Ok(data)) => data,
            Some(Err(e)) => {
                self.abort();
                return Err(e);
            }
            None => {
                self.abort();
                return Err(Error::corrupt("JPEG output size overflows"));
            }
        };
        let max_memory = usize::try_from(coefficient_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(DECODER_SLACK)
            .min(self.max_memory);
        let budget_ms = deadline
            .remaining_ms()
            .map_or(-1, |ms| c_long::try_from(ms).unwrap_or(c_long::MAX));
        // SAFETY: `data` is a live, exclusively borrowed buffer of `data.len()` bytes; the C
        // side checks `stride * output_height <= out_len` before writing.
        let rc = unsafe {
            tdj_decode(
                self.handle.as_ptr(),
                data.as_mut_ptr(),
                stride as c_ulong,
                data.len() as c_ulong,
                c_ulong::try_from(max_memory).unwrap_or(c_ulong::MAX),
                budget_ms,
            )
        };
        if rc != 0 {
            // SAFETY: reads a flag of the live handle.
            if unsafe { tdj_timed_out(self.handle.as_ptr()) } != 0 {
                return Err(deadline.error());
            }
            return Err(Error::corrupt(self.message()));
        }
        // SAFETY: reads a flag of the live handle.
        if unsafe { tdj_premature_eof(self.handle.as_ptr()) } != 0 {
            return Err(Error::corrupt("JPEG data is truncated"));
        }
        Ok(Decoded {
            pixels: Pixels {
                width,
                height,
                layout,
                data,
            },
            icc,
        })
    }

    fn abort(&mut self) {
        // SAFETY: resets the live handle; harmless when nothing is in progress.
        unsafe { tdj_abort(self.handle.as_ptr()) }
    }
}

impl Drop for JpegDecoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from tdj_new and is freed exactly once, here.
        unsafe { tdj_free(self.handle.as_ptr()) }
    }
}
