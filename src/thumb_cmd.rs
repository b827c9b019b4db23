//! `thumbd thumb IN... [-o DIR]`: thumbnails of local files, rayon across images.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ParallelProgressIterator, ProgressBar, ProgressStyle};
use rayon::prelude::*;
use thumbcore::{
    ImageFormat, InputFormats, Limits, Output, Profile, Profiles, Rendition, ResizeSpace,
    ThumbSpec, Thumbnailer,
};

/// Arguments of `thumbd thumb`.
#[derive(Args, Debug)]
pub struct ThumbArgs {
    /// Image files, or folders searched recursively for the accepted formats' files
    /// (.png/.jpg/.jpeg by default; .webp, .gif when accepted).
    #[arg(required = true, value_name = "IN")]
    inputs: Vec<PathBuf>,
    /// Where to write the thumbnails (created if missing).
    #[arg(short, long, value_name = "DIR", default_value = "thumbs")]
    output: PathBuf,
    /// Box to fit into: `330` or `WIDTHxHEIGHT`.
    #[arg(long, default_value = "330", value_parser = parse_size)]
    size: (u32, u32),
    /// Output format: png, jpeg[:QUALITY] (default 85), webp[:QUALITY] (lossy, default 80),
    /// webp:lossless or avif[:QUALITY] (default 80).
    #[arg(long, default_value = "png")]
    format: Output,
    /// Quality of JPEG, lossy WebP or AVIF output (1-100), instead of FORMAT's.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: Option<u8>,
    /// A set of renditions per image instead of one thumbnail, from one decode: a list
    /// (`80:webp,160:webp,330:avif,330:png`) or the name of a profile in THUMBD_PROFILES.
    /// Writes NAME-SIZE.EXT for each (AVIF encoded at once).
    #[arg(long, value_name = "PROFILE", conflicts_with_all = ["size", "format", "quality"])]
    profile: Option<String>,
    /// Input formats accepted: png, jpeg, webp, gif (comma-separated), as the server's
    /// `accept_formats`.
    #[arg(long, env = "THUMBD_ACCEPT_FORMATS", default_value = "png,jpeg")]
    accept_formats: InputFormats,
    /// Size budget in bytes; 0 turns it off.
    #[arg(long, default_value_t = 300_000)]
    budget: usize,
    /// Largest input file read, in bytes. No limit unless given: the pixel limit still
    /// bounds the memory a file can take.
    #[arg(long, value_name = "BYTES")]
    max_bytes: Option<u64>,
    /// Largest input accepted, in pixels.
    #[arg(long, default_value_t = Limits::default().max_pixels)]
    max_pixels: u64,
    /// Smallest input accepted, in pixels per side.
    #[arg(long, value_name = "PIXELS", default_value_t = Limits::default().min_width)]
    min_size: u32,
    /// The space the resize averages in: srgb or linear (linear light).
    #[arg(long, env = "THUMBD_RESIZE_SPACE", default_value = "srgb")]
    resize_space: ResizeSpace,
    /// Images processed at once (default: one per core).
    #[arg(short, long)]
    jobs: Option<usize>,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let parse = |v: &str| match v.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?} is not a size: use 330 or 330x200")),
    };
    match s.split_once(['x', 'X']) {
        Some((w, h)) => Ok((parse(w)?, parse(h)?)),
        None => parse(s).map(|n| (n, n)),
    }
}

/// Runs the command; the exit code is 1 when any input failed.
pub fn run(args: ThumbArgs) -> anyhow::Result<ExitCode> {
    let Inputs { files, unreadable } = collect_inputs(&args.inputs, args.accept_formats);
    if files.is_empty() {
        bail!(
            "no {} files found in the given inputs",
            extensions(args.accept_formats).join("/")
        );
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let mut spec = ThumbSpec {
        max_width: args.size.0,
        max_height: args.size.1,
        budget_bytes: (args.budget > 0).then_some(args.budget),
        resize_space: args.resize_space,
        limits: Limits {
            max_input_bytes: usize::MAX,
            max_pixels: args.max_pixels,
            min_width: args.min_size,
            min_height: args.min_size,
            accept_formats: args.accept_formats,
            ..Limits::default()
        },
        ..ThumbSpec::default()
    };
    let mut output = args.format;
    if let Some(q) = args.quality {
        match output.format {
            ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Avif => output.quality = Some(q),
            _ => bail!("--quality applies to jpeg, lossy webp and avif output only"),
        }
    }
    output.apply(&mut spec);
    let renditions = match &args.profile {
        Some(p) => profile(p)?.renditions,
        None => vec![Rendition {
            width: args.size.0,
            height: args.size.1,
            output,
        }],
    };
    let set = args.profile.is_some();
    let jobs = output_names(&files, &args.output);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.unwrap_or(0))
        .build()
        .context("cannot start the thread pool")?;

    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(jobs.len() as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {rate} eta {eta}")
                .map(|style| {
                    // indicatif's own {per_sec} prints "8,800.8524/s".
                    style.with_key(
                        "rate",
                        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.0} images/s", state.per_sec());
                        },
                    )
                })
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let results: Vec<Result<(), (String, String)>> = pool.install(|| {
        jobs.par_iter()
            .progress_with(bar.clone())
            .map_init(Thumbnailer::new, |t, (input, output)| {
                let r = one(t, input, output, &spec, &renditions, set, args.max_bytes);
                if let Err((code, msg)) = &r {
                    bar.suspend(|| eprintln!("failed: {}: {code}: {msg}", input.display()));
                }
                r
            })
            .collect()
    });
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();

    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    if unreadable > 0 {
        failed.insert("Unreadable".to_owned(), unreadable);
    }
    for (code, _) in results.iter().filter_map(|r| r.as_ref().err()) {
        *failed.entry(code.clone()).or_default() += 1;
    }
    let done = results.len() + unreadable - failed.values().sum::<usize>();
    let by_code: Vec<String> = failed.iter().map(|(c, n)| format!("{c}: {n}")).collect();
    eprintln!(
        "done {done}, failed {}{} in {elapsed:.2} s ({:.1} images/s) -> {}",
        results.len() + unreadable - done,
        if by_code.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_code.join(", "))
        },
        results.len() as f64 / elapsed.max(1e-9),
        args.output.display()
    );
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The renditions `--profile` names: a list, or a profile of `THUMBD_PROFILES`.
fn profile(arg: &str) -> anyhow::Result<Profile> {
    if arg.contains(':') {
        return Profile::parse("cli", arg).map_err(anyhow::Error::msg);
    }
    let mut profiles = Profiles::default();
    if let Ok(env) = std::env::var("THUMBD_PROFILES") {
        profiles
            .insert_all(&env)
            .map_err(|e| anyhow::anyhow!("THUMBD_PROFILES: {e}"))?;
    }
    profiles.get(arg).cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "--profile {arg:?}: give renditions (80:webp,330:png) or one of {} (THUMBD_PROFILES)",
            profiles.names().join(", ")
        )
    })
}

/// Thumbnails one file into `base` + `.EXT` (one rendition, `set` false) or `base` +
/// `-SIZE.EXT` per rendition; errors are (code, message).
fn one(
    t: &mut Thumbnailer,
    input: &Path,
    base: &Path,
    spec: &ThumbSpec,
    renditions: &[Rendition],
    set: bool,
    max_bytes: Option<u64>,
) -> Result<(), (String, String)> {
    let io = |e: std::io::Error| ("IoError".to_owned(), e.to_string());
    let len = std::fs::metadata(input).map_err(io)?.len();
    // Refuse before reading a file over the limit into memory.
    if let Some(max) = max_bytes.filter(|&max| len > max) {
        return Err((
            "FileTooLarge".to_owned(),
            format!("the file has {len} bytes, over --max-bytes {max}"),
        ));
    }
    let bytes = std::fs::read(input).map_err(io)?;
    let made = t
        .render(&bytes, spec, renditions)
        .map_err(|e| (e.code().as_str().to_owned(), e.to_string()))?;
    for r in &made.renditions {
        let mut name = base.as_os_str().to_owned();
        if set {
            let box_ = &r.rendition;
            name.push(if box_.width == box_.height {
                format!("-{}", box_.width)
            } else {
                format!("-{}x{}", box_.width, box_.height)
            });
        }
        name.push(".");
        name.push(r.rendition.output.format.extension());
        std::fs::write(PathBuf::from(name), &r.bytes).map_err(io)?;
    }
    Ok(())
}

/// The file extensions of the `accepted` formats, with the dot.
fn extensions(accepted: InputFormats) -> Vec<&'static str> {
    accepted
        .iter()
        .flat_map(|f| match f {
            ImageFormat::Jpeg => &[".jpg", ".jpeg"][..],
            ImageFormat::Png => &[".png"],
            ImageFormat::WebP => &[".webp"],
            ImageFormat::Gif => &[".gif"],
            ImageFormat::Avif => &[],
        })
        .copied()
        .collect()
}

fn is_image_name(p: &Path, accepted: InputFormats) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        extensions(accepted)
            .iter()
            .any(|x| x[1..].eq_ignore_ascii_case(e))
    })
}

/// The files to thumbnail, and how many entries could not be read (each already reported).
struct Inputs {
    files: Vec<PathBuf>,
    unreadable: usize,
}

/// Files named on the command line are taken as they are; folders are searched recursively
/// for image extensions, following symbolic links. A link back to a folder being searched is
/// reported and skipped; an entry that cannot be read is reported and counted, and the search
/// goes on. A file reached twice (two names, two links) is taken once. The order is
/// deterministic: arguments in order, each folder's entries sorted by name.
fn collect_inputs(inputs: &[PathBuf], accepted: InputFormats) -> Inputs {
    let mut found = Inputs {
        files: Vec::new(),
        unreadable: 0,
    };
    let mut seen = std::collections::HashSet::new();
    for input in inputs {
        let entries = walkdir::WalkDir::new(input)
            .follow_links(true)
            .sort_by_file_name();
        for entry in entries {
            match entry {
                Ok(e) if e.file_type().is_dir() => {}
                Ok(e) if e.depth() == 0 || is_image_name(e.path(), accepted) => {
                    let path = e.into_path();
                    // Canonical paths tell one file reached by two names apart from two files.
                    if seen.insert(std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone())) {
                        found.files.push(path);
                    }
                }
                Ok(_) => {}
                Err(e) => match e.loop_ancestor() {
                    Some(ancestor) => eprintln!(
                        "skipped: {}: a link back to {}, already being searched",
                        e.path().unwrap_or(input).display(),
                        ancestor.display()
                    ),
                    None => {
                        found.unreadable += 1;
                        eprintln!(
                            "failed: {}: Unreadable: {}",
                            e.path().unwrap_or(input).display(),
                            e.io_error()
                                .map_or_else(|| e.to_string(), ToString::to_string)
                        );
                    }
                },
            }
        }
    }
    found
}

/// `name` per input (the stem: the extension is the output's), in `out`; inputs with the
/// same stem get `-2`, `-3`, … in order.
fn output_names(files: &[PathBuf], out: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    files
        .iter()
        .map(|f| {
            let stem = f
                .file_stem()
                .map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned());
            let n = seen.entry(stem.clone()).or_default();
            *n += 1;
            let name = if *n == 1 { stem } else { format!("{stem}-{n}") };
            (f.clone(), out.join(name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("330"), Ok((330, 330)));
        assert_eq!(parse_size("200x100"), Ok((200, 100)));
        assert!(parse_size("0").is_err());
        assert!(parse_size("abc").is_err());
        assert!(parse_size("10x").is_err());
    }

    #[test]
    fn folders_are_searched_for_the_accepted_formats() {
        let default = InputFormats::DEFAULT;
        assert!(is_image_name(Path::new("a/b.JPEG"), default));
        assert!(!is_image_name(Path::new("a/b.gif"), default));
        let all = InputFormats::ALL;
        assert!(is_image_name(Path::new("a/b.gif"), all));
        assert!(is_image_name(Path::new("a/b.webp"), all));
        assert!(!is_image_name(Path::new("a/b.bmp"), all));
    }

    #[test]
    fn duplicate_stems_get_suffixes() {
        let files = [
            PathBuf::from("a/x.jpg"),
            PathBuf::from("b/x.png"),
            PathBuf::from("y.jpg"),
        ];
        let names: Vec<_> = output_names(&files, Path::new("o"))
            .into_iter()
            .map(|(_, o)| o)
            .collect();
        assert_eq!(
            names,
            [
                PathBuf::from("o/x"),
                PathBuf::from("o/x-2"),
                PathBuf::from("o/y")
            ]
        );
    }
}
