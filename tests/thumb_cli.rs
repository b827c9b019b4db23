//! `thumbd thumb` as a user runs it: real files in, real files out, exit codes and messages.

use std::path::PathBuf;
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("thumbd-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    let mut wr = enc.write_header().unwrap();
    wr.write_image_data(&vec![90; (w * h * 3) as usize])
        .unwrap();
    wr.finish().unwrap();
    out
}

fn jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let data = vec![200; usize::from(w) * usize::from(h) * 3];
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&data, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

fn png_size(path: &std::path::Path) -> (u32, u32) {
    let dec = png::Decoder::new(std::io::Cursor::new(std::fs::read(path).unwrap()));
    let info = dec.read_info().unwrap();
    info.info().size()
}

fn thumbd(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_thumbd"))
        .arg("thumb")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn folder_in_thumbnails_out_failures_reported() {
    let dir = scratch("mixed");
    let input = dir.join("in");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    std::fs::write(input.join("wide.png"), png(2000, 1500)).unwrap();
    std::fs::write(input.join("nested/tall.jpg"), jpeg(1000, 2000)).unwrap();
    std::fs::write(
        input.join("broken.jpg"),
        b"\xFF\xD8\xFF\xE0 definitely not a jpeg",
    )
    .unwrap();
    std::fs::write(input.join("tiny.png"), png(40, 40)).unwrap();
    std::fs::write(input.join("notes.txt"), b"ignored: not an image name").unwrap();
    let out = dir.join("out");

    let run = thumbd(&[input.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(1),
        "a failed input makes the exit code 1: {stderr}"
    );
    assert_eq!(png_size(&out.join("wide.png")), (330, 248));
    assert_eq!(png_size(&out.join("tall.png")), (165, 330));
    assert!(!out.join("broken.png").exists() && !out.join("tiny.png").exists());
    assert!(stderr.contains("broken.jpg: CorruptImage:"), "{stderr}");
    assert!(stderr.contains("tiny.png: ThumbnailTooSmall:"), "{stderr}");
    assert!(
        stderr.contains("done 2, failed 2 (CorruptImage: 1, ThumbnailTooSmall: 1)"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn format_and_size_flags() {
    let dir = scratch("flags");
    let file = dir.join("photo.png");
    std::fs::write(&file, png(1200, 600)).unwrap();
    let out = dir.join("out");
    let run = thumbd(&[
        file.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--format".as_ref(),
        "jpeg".as_ref(),
        "--size".as_ref(),
        "200x50".as_ref(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let bytes = std::fs::read(out.join("photo.jpg")).unwrap();
    let info = thumbcore::probe(&bytes).unwrap();
    assert_eq!((info.width, info.height), (100, 50));

    let bad = thumbd(&[file.as_os_str(), "--size".as_ref(), "0".as_ref()]);
    assert_eq!(bad.status.code(), Some(2), "clap usage error");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_profile_writes_every_rendition_of_each_image() {
    let dir = scratch("profile");
    std::fs::write(dir.join("wide.png"), png(1200, 600)).unwrap();
    let out = dir.join("out");
    let run = thumbd(&[
        dir.join("wide.png").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--profile".as_ref(),
        "80:webp,160:avif,330:png,100x20:jpeg".as_ref(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for (name, size) in [
        ("wide-80.webp", (80, 40)),
        ("wide-330.png", (330, 165)),
        ("wide-100x20.jpg", (40, 20)),
    ] {
        let info = thumbcore::probe(&std::fs::read(out.join(name)).unwrap()).unwrap();
        assert_eq!((info.width, info.height), size, "{name}");
    }
    let avif = std::fs::read(out.join("wide-160.avif")).unwrap();
    assert_eq!(&avif[4..12], b"ftypavif");

    // A profile named in THUMBD_PROFILES; an unknown one is refused.
    let named = Command::new(env!("CARGO_BIN_EXE_thumbd"))
        .args(["thumb", "-o"])
        .arg(dir.join("named"))
        .arg(dir.join("wide.png"))
        .args(["--profile", "icons"])
        .env("THUMBD_PROFILES", "icons=64:png,32:png")
        .output()
        .unwrap();
    assert!(
        named.status.success(),
        "{}",
        String::from_utf8_lossy(&named.stderr)
    );
    assert_eq!(png_size(&dir.join("named").join("wide-32.png")), (32, 16));
    let unknown = thumbd(&[
        dir.join("wide.png").as_os_str(),
        "--profile".as_ref(),
        "nope".as_ref(),
    ]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nope"));
    // One thumbnail's flags and a profile do not mix.
    let both = thumbd(&[
        dir.join("wide.png").as_os_str(),
        "--profile".as_ref(),
        "80:png".as_ref(),
        "--size".as_ref(),
        "100".as_ref(),
    ]);
    assert_eq!(both.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A PNG of noise (it does not compress): `w × h × 3` bytes and a little more.
fn noise_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    let mut wr = enc.write_header().unwrap();
    let mut x: u32 = 0x9E37_79B9;
    let data: Vec<u8> = (0..w * h * 3)
        .map(|_| {
            // xorshift32: cheap bytes no deflate can shrink.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    wr.write_image_data(&data).unwrap();
    wr.finish().unwrap();
    out
}

#[test]
fn local_files_have_no_size_limit_unless_asked_and_min_size_lifts_the_floor() {
    let dir = scratch("limits");
    let big = dir.join("big.png");
    std::fs::write(&big, noise_png(1400, 1400)).unwrap();
    let big_len = std::fs::metadata(&big).unwrap().len();
    assert!(
        big_len > 5 * 1024 * 1024,
        "over the API's default body limit"
    );
    let small = dir.join("small.png");
    std::fs::write(&small, png(40, 30)).unwrap();
    let out = dir.join("out");

    let run = thumbd(&[
        big.as_os_str(),
        small.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--min-size".as_ref(),
        "30".as_ref(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert_eq!(png_size(&out.join("big.png")), (330, 330));
    assert_eq!(
        png_size(&out.join("small.png")),
        (40, 30),
        "kept, never upscaled"
    );

    let limited = thumbd(&[
        big.as_os_str(),
        "-o".as_ref(),
        dir.join("out2").as_os_str(),
        "--max-bytes".as_ref(),
        "5000000".as_ref(),
    ]);
    let stderr = String::from_utf8_lossy(&limited.stderr);
    assert_eq!(limited.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "big.png: FileTooLarge: the file has {big_len} bytes, over --max-bytes 5000000"
        )),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_symlink_loop_is_reported_once_and_each_image_made_once() {
    let dir = scratch("loop");
    let input = dir.join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    std::fs::write(input.join("a.png"), png(200, 100)).unwrap();
    std::fs::write(input.join("sub/b.jpg"), jpeg(100, 200)).unwrap();
    // A link back to the top, and a second name for a file.
    std::os::unix::fs::symlink(&input, input.join("sub/loop")).unwrap();
    std::os::unix::fs::symlink(input.join("a.png"), input.join("sub/again.png")).unwrap();
    let out = dir.join("out");

    let run = thumbd(&[input.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "a loop loses nothing: {stderr}");
    assert!(
        stderr.contains("sub/loop: a link back to"),
        "the loop is reported: {stderr}"
    );
    let mut made: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    made.sort();
    assert_eq!(made, ["a.png", "b.png"], "{stderr}");
    assert!(stderr.contains("done 2, failed 0"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_input_is_counted_and_the_rest_made() {
    let dir = scratch("unreadable");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.png"), png(200, 100)).unwrap();
    let out = dir.join("out");
    let missing = dir.join("missing.png");

    let run = thumbd(&[
        input.as_os_str(),
        missing.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.png: Unreadable:"), "{stderr}");
    assert!(
        stderr.contains("done 1, failed 1 (Unreadable: 1)"),
        "{stderr}"
    );
    assert_eq!(png_size(&out.join("a.png")), (200, 100));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A GIF of two 1×1 frames on a `w`×`h` screen, written by hand (black palette entry 0).
fn tiny_gif(w: u16, h: u16) -> Vec<u8> {
    let mut g = b"GIF89a".to_vec();
    g.extend_from_slice(&w.to_le_bytes());
    g.extend_from_slice(&h.to_le_bytes());
    g.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    for _ in 0..2 {
        g.extend_from_slice(&[0x21, 0xF9, 4, 0, 10, 0, 0, 0]);
        // 1×1 at (0, 0), LZW code size 2: clear, index 0, end.
        g.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0]);
    }
    g.push(0x3B);
    g
}

#[test]
fn gif_input_is_opt_in_and_webp_output_lossy_unless_asked() {
    let dir = scratch("formats");
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("anim.gif"), tiny_gif(120, 100)).unwrap();
    std::fs::write(input.join("photo.png"), png(300, 200)).unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        let out = thumbd(args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // By default a folder search skips .gif files, and a GIF named is refused.
    let out = dir.join("default");
    let (code, stderr) = run(&[input.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(out.join("photo.png").exists() && !out.join("anim.png").exists());
    let gif = input.join("anim.gif");
    let (code, stderr) = run(&[gif.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("InvalidThumbnailFormat"), "{stderr}");

    // Accepted: both are made; `webp` is lossy (a VP8 chunk), `webp:lossless` is VP8L.
    let out = dir.join("accepted");
    let (code, stderr) = run(&[
        input.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--accept-formats".as_ref(),
        "png,jpeg,gif".as_ref(),
        "--format".as_ref(),
        "webp".as_ref(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    for name in ["anim.webp", "photo.webp"] {
        // The GIF's transparent screen makes an extended file (VP8X, ALPH, VP8 ).
        let bytes = std::fs::read(out.join(name)).unwrap();
        assert!(bytes.windows(4).any(|w| w == b"VP8 "), "{name}");
        assert!(!bytes.windows(4).any(|w| w == b"VP8L"), "{name}");
    }
    let out = dir.join("lossless");
    let png_in = input.join("photo.png");
    let (code, stderr) = run(&[
        png_in.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--format".as_ref(),
        "webp:lossless".as_ref(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        &std::fs::read(out.join("photo.webp")).unwrap()[12..16],
        b"VP8L"
    );
    let (code, _) = run(&[png_in.as_os_str(), "--format".as_ref(), "webp:0".as_ref()]);
    assert_eq!(code, Some(2), "a quality out of range is a usage error");
    std::fs::remove_dir_all(&dir).unwrap();
}
