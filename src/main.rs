//! The `thumbd` binary: parses the command line and calls the crates' entry points.

mod thumb_cmd;

use clap::{Parser, Subcommand};

/// thumbd: a fast, trustworthy thumbnail service.
#[derive(Parser, Debug)]
#[command(version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make thumbnails of local files and folders (PNG/JPEG), in parallel.
    Thumb(thumb_cmd::ThumbArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Thumb(args) => thumb_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
