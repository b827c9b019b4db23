//! Fuzzes `probe` and the whole `thumbnail` pipeline with every input format accepted (PNG,
//! JPEG, WebP, GIF), so each decoder is reached: any bytes must give a result or a coded
//! error, never a panic, an abort or a hang.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use thumbcore::{InputFormats, Limits, ThumbSpec, Thumbnailer};

thread_local! {
    static THUMBNAILER: RefCell<Thumbnailer> = RefCell::new(Thumbnailer::new());
}

fuzz_target!(|data: &[u8]| {
    let _ = thumbcore::probe(data);
    // Any size reaches the decoders (fuzzed files are tiny); a lower pixel cap keeps each
    // run fast without hiding the limit checks.
    let spec = ThumbSpec {
        max_width: 64,
        max_height: 64,
        limits: Limits {
            min_width: 1,
            min_height: 1,
            max_pixels: 4_000_000,
            accept_formats: InputFormats::ALL,
            ..Limits::default()
        },
        ..ThumbSpec::default()
    };
    THUMBNAILER.with(|t| {
        if let Ok(thumb) = t.borrow_mut().thumbnail(data, &spec) {
            assert!(thumb.width <= 64 && thumb.height <= 64);
            assert!(!thumb.bytes.is_empty());
        }
    });
});
