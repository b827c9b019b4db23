//! Shared by the load benches (`load.rs`, `distributed.rs`; included with `#[path]`): the
//! corpus, a load client, CPU accounting and percentiles.
#![allow(dead_code)] // each bench uses part of it

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// utime + stime of a /proc/…/stat file, in seconds (clock ticks are 100 Hz on Linux).
pub fn cpu_secs(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank on a sorted sample: index = round(p% × (n − 1)), counted in whole steps.
    let steps = sorted.len() - 1;
    let rank = (0..=steps)
        .find(|&i| i as f64 >= p / 100.0 * steps as f64 - 0.5)
        .unwrap_or(steps);
    sorted[rank]
}

pub fn load_corpus(dir: &Path) -> Vec<(Vec<u8>, &'static str)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let ext = p.extension()?.to_str()?.to_ascii_lowercase();
            let ct = match ext.as_str() {
                "png" => "image/png",
                "jpg" | "jpeg" => "image/jpeg",
                _ => return None,
            };
            let bytes = std::fs::read(&p).ok()?;
            (bytes.len() <= 5 * 1024 * 1024 && thumbcore::probe(&bytes).is_ok())
                .then_some((bytes, ct))
        })
        .collect()
}

pub fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    let mut x: u32 = 0x9E37_79B9;
    let data: Vec<u8> = (0..w * h * 3)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    out
}

/// One create; returns (HTTP status, seconds).
pub fn post(
    agent: &ureq::Agent,
    base: &str,
    token: &str,
    id: &str,
    image: &(Vec<u8>, &'static str),
    prefer: &str,
) -> (u16, f64) {
    let t = Instant::now();
    let r = agent
        .post(format!(
            "{base}/v1/thumbnails?thumbnailId={id}&environment=development"
        ))
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", image.1)
        .header("prefer", prefer)
        .send(&image.0[..])
        .expect("request");
    (r.status().as_u16(), t.elapsed().as_secs_f64())
}

/// `clients` closed-loop clients send `total` uploads from `corpus` with `Prefer: wait=60`
/// (each answer comes when its job has succeeded), each taking the next upload when its last
/// is answered, so they finish together. Returns the seconds taken and the sorted
/// POST→succeeded latencies.
pub fn closed_loop(
    base: &str,
    token: &str,
    corpus: &[(Vec<u8>, &'static str)],
    clients: usize,
    total: usize,
    prefix: &str,
) -> (f64, Vec<f64>) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let t = Instant::now();
    let mut latencies: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let next = &next;
                s.spawn(move || {
                    let agent = agent();
                    std::iter::from_fn(|| {
                        Some(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                            .filter(|&i| i < total)
                    })
                    .map(|i| {
                        let (status, secs) = post(
                            &agent,
                            base,
                            token,
                            &format!("{prefix}{i}"),
                            &corpus[i % corpus.len()],
                            "wait=60",
                        );
                        assert_eq!(status, 201, "job {i}");
                        secs
                    })
                    .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let elapsed = t.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    (elapsed, latencies)
}

/// The corpus named by the bench's first non-flag argument (or `THUMBD_BENCH_CORPUS`);
/// `None`, after saying so, when there is none.
pub fn corpus_from_args(bench: &str) -> Option<Vec<(Vec<u8>, &'static str)>> {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("THUMBD_BENCH_CORPUS").map(PathBuf::from));
    let Some(dir) = dir else {
        eprintln!("{bench}: give a corpus folder (cargo bench --bench {bench} -- DIR); skipping");
        return None;
    };
    let corpus = load_corpus(&dir);
    assert!(
        !corpus.is_empty(),
        "no PNG/JPEG ≤ 5 MB in {}",
        dir.display()
    );
    Some(corpus)
}

/// Rounds over the corpus per run: `THUMBD_LOAD_ROUNDS`, else `default`.
pub fn rounds(default: usize) -> usize {
    env_number("THUMBD_LOAD_ROUNDS", default)
}

/// The whole number in environment variable `name`, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
