//! Criterion benchmarks of thumbcore: per stage (probe, decode, resize, encode) and end to
//! end, on generated images of fixed sizes so they run anywhere.
//!
//! `cargo bench --bench pipeline` runs the generated set;
//! `THUMBD_BENCH_CORPUS=DIR cargo bench --bench pipeline` runs every PNG/JPEG in DIR instead.
//! `cargo bench --bench pipeline -- hostile` runs only the hostile inputs: how long thumbcore
//! takes to refuse them (the many-scan JPEG also prints the CPU time of one refusal).
//! `cargo bench --bench pipeline -- renditions` runs the sets of renditions: one `330:png`
//! against the set `80,160,330 × webp + 330:png` (and with AVIF deferred, as a job makes
//! it), and the cost of each AVIF rendition the background lane encodes.

// Test patterns are made by deliberately wrapping arithmetic into u8.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use thumbcore::{Limits, Profile, ThumbSpec, Thumbnailer, probe};

#[path = "../crates/thumbcore/tests/common/hostile.rs"]
mod hostile;

/// CPU seconds (user + system) this thread has used so far.
fn thread_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<f64> = after
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / 100.0
}

/// Hostile inputs thumbcore must refuse quickly: a 48 MP progressive JPEG with 5000 AC scans
/// (cut off at scan 501) and a PNG whose colour profile inflates to 400 MiB (ignored).
fn hostile(c: &mut Criterion) {
    let spec = ThumbSpec::default();
    let many_scans = hostile::many_scan_jpeg(8000, 6000, 5000);
    let bomb = hostile::png_with_huge_iccp(400, 300, 400 << 20);
    let mut t = Thumbnailer::new();
    let cpu = thread_cpu_secs();
    let err = t.thumbnail(&many_scans, &spec).unwrap_err();
    println!(
        "many-scan JPEG ({} bytes, 8000x6000, 5000 scans): {} after {:.2} s of CPU",
        many_scans.len(),
        err.code(),
        thread_cpu_secs() - cpu
    );
    let mut g = c.benchmark_group("hostile");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_millis(500));
    g.bench_function("many-scan-jpeg-8000x6000-refused", |b| {
        b.iter(|| t.thumbnail(black_box(&many_scans), &spec).unwrap_err())
    });
    g.bench_function("png-400MiB-iccp-ignored", |b| {
        b.iter(|| t.thumbnail(black_box(&bomb), &spec).unwrap())
    });
    g.finish();
}

/// A photo-like RGB image: gradients and texture, so encoders and decoders have real work.
fn photo(w: usize, h: usize) -> Vec<u8> {
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .flat_map(|(x, y)| {
            let n = ((x * 7919 + y * 104_729) % 23) as u8;
            [
                ((x * 255 / w) as u8).wrapping_add(n),
                ((y * 255 / h) as u8).wrapping_add(n / 2),
                (((x + y) / 4) % 256) as u8,
            ]
        })
        .collect()
}

fn jpeg(w: u16, h: u16, progressive: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
    enc.set_progressive(progressive);
    enc.encode(
        &photo(w.into(), h.into()),
        w,
        h,
        jpeg_encoder::ColorType::Rgb,
    )
    .expect("encode JPEG");
    out
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    let mut wr = enc.write_header().expect("PNG header");
    wr.write_image_data(&photo(w as usize, h as usize))
        .expect("PNG data");
    wr.finish().expect("PNG end");
    out
}

/// (name, bytes) of the inputs: the corpus folder if given, else generated images.
fn inputs() -> Vec<(String, Vec<u8>)> {
    if let Some(dir) = std::env::var_os("THUMBD_BENCH_CORPUS") {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("THUMBD_BENCH_CORPUS is a readable folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "png" || e == "jpg" || e == "jpeg")
            })
            .collect();
        files.sort();
        return files
            .into_iter()
            .map(|p| {
                let name = p
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                (name, std::fs::read(&p).expect("read corpus file"))
            })
            .collect();
    }
    vec![
        ("jpeg-baseline-1000x750".into(), jpeg(1000, 750, false)),
        ("jpeg-baseline-6000x4000".into(), jpeg(6000, 4000, false)),
        ("jpeg-progressive-6000x4000".into(), jpeg(6000, 4000, true)),
        ("png-rgb-1000x750".into(), png(1000, 750)),
        ("png-rgb-4000x3000".into(), png(4000, 3000)),
    ]
}

fn spec() -> ThumbSpec {
    // Generated and corpus stress files may exceed the 5 MiB upload limit: benchmarks
    // measure the pipeline, not the limit.
    ThumbSpec {
        limits: Limits {
            max_input_bytes: usize::MAX,
            ..Limits::default()
        },
        ..ThumbSpec::default()
    }
}

fn stages(c: &mut Criterion) {
    let spec = spec();
    let inputs = inputs();
    let mut t = Thumbnailer::new();
    for (name, bytes) in &inputs {
        if t.thumbnail(bytes, &spec).is_err() {
            eprintln!("skipping {name}: not thumbnailable");
            continue;
        }
        let mut g = c.benchmark_group(name.as_str());
        g.sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        g.throughput(Throughput::Elements(1));
        g.bench_function("probe", |b| b.iter(|| probe(black_box(bytes)).unwrap()));
        g.bench_function("decode", |b| {
            b.iter(|| t.decode(black_box(bytes), &spec).unwrap())
        });
        let mut resizer = Thumbnailer::new();
        g.bench_function("resize", |b| {
            b.iter_batched(
                || t.decode(bytes, &spec).unwrap(),
                |frame| resizer.resize(frame).unwrap(),
                criterion::BatchSize::LargeInput,
            )
        });
        g.bench_function("encode", |b| {
            b.iter_batched(
                || {
                    let frame = t.decode(bytes, &spec).unwrap();
                    t.resize(frame).unwrap()
                },
                |frame| Thumbnailer::encode(frame, &spec).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
        g.bench_with_input(BenchmarkId::new("end_to_end", "png"), bytes, |b, bytes| {
            b.iter(|| t.thumbnail(black_box(bytes), &spec).unwrap())
        });
        g.finish();
    }
}

/// A set of renditions against one thumbnail, per input; then each AVIF rendition's encode
/// from its deferred source (what the background lane does).
fn renditions(c: &mut Criterion) {
    let spec = spec();
    let one = Profile::parse("one", "330:png").unwrap();
    let web = Profile::parse("web", "80:webp,160:webp,330:webp,330:png").unwrap();
    let with_avif = Profile::parse(
        "avif",
        "80:webp,160:webp,330:webp,80:avif,160:avif,330:avif,330:png",
    )
    .unwrap();
    let mut t = Thumbnailer::new();
    for (name, bytes) in &inputs() {
        let Ok(deferred) = t.render_deferring_avif(bytes, &spec, &with_avif.renditions) else {
            eprintln!("skipping {name}: not thumbnailable");
            continue;
        };
        let mut g = c.benchmark_group(format!("renditions/{name}"));
        g.sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        g.bench_function("one 330:png", |b| {
            b.iter(|| t.render(black_box(bytes), &spec, &one.renditions).unwrap())
        });
        g.bench_function("set 80,160,330 webp + 330:png", |b| {
            b.iter(|| t.render(black_box(bytes), &spec, &web.renditions).unwrap())
        });
        g.bench_function("set + 80,160,330 avif deferred", |b| {
            b.iter(|| {
                t.render_deferring_avif(black_box(bytes), &spec, &with_avif.renditions)
                    .unwrap()
            })
        });
        for made in deferred.renditions.iter().filter(|r| r.deferred) {
            g.bench_function(format!("lane {}", made.rendition), |b| {
                b.iter(|| {
                    Thumbnailer::encode_deferred(
                        black_box(&made.bytes),
                        made.rendition.output,
                        &spec,
                    )
                    .unwrap()
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, stages, hostile, renditions);
criterion_main!(benches);
