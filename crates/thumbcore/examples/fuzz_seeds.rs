//! Writes thumbcore's generated attack files into a folder, as fuzz seeds (see
//! `fuzz/README.md`):
//!
//! ```sh
//! cargo run -p thumbcore --example fuzz_seeds -- fuzz/corpus/thumbnail
//! ```
//!
//! The files come from `tests/common/hostile.rs`, the generators the tests use: a
//! progressive JPEG with more scans than the cap, a PNG whose colour profile inflates to
//! 400 MiB, 4 MP and 49 MP progressive 4:4:4 JPEGs and the latter's header alone.

#[path = "../tests/common/hostile.rs"]
mod hostile;

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .expect("usage: fuzz_seeds DIR (created if missing)"),
    );
    std::fs::create_dir_all(&dir)?;
    // The fuzz target caps images at 4 MP: the small files reach its decoders, the big
    // ones its limit checks (and their mutations either).
    let seeds: [(&str, Vec<u8>); 6] = [
        // Small enough to mutate quickly, over the 500-scan cap all the same.
        (
            "hostile-many-scans-2000x1500.jpg",
            hostile::many_scan_jpeg(2000, 1500, 600),
        ),
        (
            "hostile-many-scans-8000x6000.jpg",
            hostile::many_scan_jpeg(8000, 6000, 5000),
        ),
        (
            "hostile-iccp-400MiB.png",
            hostile::png_with_huge_iccp(400, 300, 400 << 20),
        ),
        (
            "hostile-progressive-444-2000x2000.jpg",
            hostile::progressive_444_jpeg(2000, 2000),
        ),
        (
            "hostile-progressive-444-7000x7000.jpg",
            hostile::progressive_444_jpeg(7000, 7000),
        ),
        (
            "hostile-progressive-444-7000x7000-header.jpg",
            hostile::progressive_444_header(7000, 7000),
        ),
    ];
    for (name, bytes) in seeds {
        let path = dir.join(name);
        std::fs::write(&path, &bytes)?;
        println!("{} ({} bytes)", path.display(), bytes.len());
    }
    Ok(())
}
