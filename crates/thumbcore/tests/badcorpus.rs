//! Hostile and unusual files from public decoder test suites: each gives a thumbnail or a
//! coded error, never a panic or a hang.
//!
//! Runs on the PngSuite copy and the WebP/GIF samples in `tests/data` always, and on
//! the folder `THUMBD_BADCORPUS` names (any tree of hostile files) when it is set; it says
//! SKIP loudly when it is not. Every input format is accepted, so each decoder is reached.

// Test patterns are made by deliberately wrapping arithmetic into u8.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use thumbcore::{InputFormats, ThumbSpec, Thumbnailer, probe};

const CODES: [&str; 5] = [
    "InvalidThumbnailFormat",
    "CorruptImage",
    "ThumbnailTooSmall",
    "ImageDimensionsTooLarge",
    "RequestTooLarge",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|e| {
            ["png", "jpg", "jpeg", "webp", "gif"]
                .iter()
                .any(|x| e == *x)
        }) {
            out.push(p);
        }
    }
}

/// Files that must fail: PngSuite's x*.png, image-png's x_*.png regressions and the
/// damaged WebP/GIF samples (`formats/x-*`).
fn must_fail(p: &Path) -> bool {
    let name = p.file_name().unwrap().to_string_lossy();
    let dir = p.parent().unwrap().file_name().unwrap().to_string_lossy();
    ((dir == "pngsuite" || dir == "formats") && name.starts_with('x'))
        || (dir == "png-regressions" && name.starts_with("x_"))
}

/// `spec` with every input format accepted.
fn all_formats(mut spec: ThumbSpec) -> ThumbSpec {
    spec.limits.accept_formats = InputFormats::ALL;
    spec
}

/// Runs every file on a worker thread so that a hang shows up as a failure, not a stuck run.
fn run_all(paths: Vec<PathBuf>, spec: ThumbSpec) -> (usize, usize) {
    let spec = all_formats(spec);
    let (tx, rx) = mpsc::channel();
    let total = paths.len();
    std::thread::spawn(move || {
        let mut t = Thumbnailer::new();
        for p in paths {
            let bytes = std::fs::read(&p).unwrap();
            let probed = probe(&bytes).map(|_| ()).map_err(|e| e.code().as_str());
            let result = t
                .thumbnail(&bytes, &spec)
                .map(|_| ())
                .map_err(|e| e.code().as_str());
            tx.send((p, probed, result)).unwrap();
        }
    });
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..total {
        let (p, probed, result) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a file took over 30 s: decoder hang");
        if let Err(code) = probed {
            assert!(CODES.contains(&code), "{}: probe gave {code}", p.display());
        }
        match result {
            Ok(()) => {
                assert!(
                    !must_fail(&p),
                    "{} must fail but gave a thumbnail",
                    p.display()
                );
                ok += 1;
            }
            Err(code) => {
                assert!(
                    CODES.contains(&code),
                    "{}: unexpected code {code}",
                    p.display()
                );
                failed += 1;
            }
        }
    }
    (ok, failed)
}

#[test]
fn shipped_pngsuite() {
    let mut paths = Vec::new();
    files(&data_dir(), &mut paths);
    let n = paths.len();
    let (ok, failed) = run_all(paths, any_size());
    assert!(
        n > 180,
        "expected the PngSuite copy and the formats, found {n} files"
    );
    // 14 x*.png files are corrupt on purpose, and so is every fuzz finding and every
    // formats/x-* sample; the rest are valid.
    let fuzz_findings = std::fs::read_dir(data_dir().join("fuzz")).unwrap().count();
    let damaged = std::fs::read_dir(data_dir().join("formats"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('x')
        })
        .count();
    assert!(damaged >= 10, "{damaged} damaged WebP/GIF samples");
    assert_eq!(failed, 14 + fuzz_findings + damaged, "{ok} ok");
}

#[test]
fn shared_badcorpus() {
    let Some(dir) = std::env::var_os("THUMBD_BADCORPUS").map(PathBuf::from) else {
        eprintln!("SKIP shared_badcorpus: set THUMBD_BADCORPUS to a folder of hostile files");
        return;
    };
    if !dir.is_dir() {
        eprintln!(
            "SKIP shared_badcorpus: {} not found (set THUMBD_BADCORPUS)",
            dir.display()
        );
        return;
    }
    let mut paths = Vec::new();
    files(&dir, &mut paths);
    assert!(
        paths.len() > 100,
        "only {} files in {}",
        paths.len(),
        dir.display()
    );
    // Both with the production limits and with any size accepted, so the tiny suite
    // images reach the decoders.
    let (ok, failed) = run_all(paths.clone(), ThumbSpec::default());
    eprintln!("badcorpus, default limits: {ok} thumbnails, {failed} coded errors");
    let (ok, failed) = run_all(paths, any_size());
    eprintln!("badcorpus, any size: {ok} thumbnails, {failed} coded errors");
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        });
    if let Some(line) = peak {
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(
            kb < 1024 * 1024,
            "peak memory {kb} kB: a file blew up memory"
        );
    }
}
