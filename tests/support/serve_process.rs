//! Starting a real `thumbd serve` on a loopback port and reading its start-up banner.
//! Shared by `tests/serve.rs`, `tests/webhooks.rs` and `benches/load.rs` (included with
//! `#[path]`).
#![allow(dead_code)] // each user calls one of the two

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A spawned `thumbd serve`: the process, its base URL and the token it printed.
pub struct ServeProcess {
    pub child: Child,
    pub base: String,
    pub token: String,
}

/// Spawns `thumbd serve --listen 127.0.0.1:0 --data-dir DATA EXTRA…` with a generated
/// secret and auth on, and waits for its address and token lines. The rate limit is off:
/// these tests and benches load the server from one client on purpose (the limit is tested
/// in crates/thumbd-api/tests/sources.rs).
pub fn spawn(data_dir: &Path, extra: &[&str], rust_log: &str, stderr: Stdio) -> ServeProcess {
    spawn_env(data_dir, extra, &[], rust_log, stderr)
}

/// [`spawn`] with more environment variables (settings without a flag).
pub fn spawn_env(
    data_dir: &Path,
    extra: &[&str],
    envs: &[(&str, &str)],
    rust_log: &str,
    stderr: Stdio,
) -> ServeProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_thumbd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", rust_log)
        .env_remove("THUMBD_JWT_SECRET")
        .env_remove("THUMBD_AUTH")
        .env("THUMBD_RATE_LIMIT", "0")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("thumbd starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut token) = (None, None);
    while token.is_none() {
        let line = lines
            .next()
            .expect("serve printed its address and token")
            .unwrap();
        if let Some(rest) = line.strip_prefix("thumbd listening on ") {
            base = rest.split_whitespace().next().map(str::to_owned);
        }
        if line.starts_with("token (") {
            token = line.rsplit(' ').next().map(str::to_owned);
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    ServeProcess {
        child,
        base: base.expect("address line"),
        token: token.unwrap(),
    }
}
