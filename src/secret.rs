//! The HS256 secret kept in the data dir when none is configured.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use secrecy::SecretString;

/// Reads `DATA_DIR/jwt-secret`, which `serve` (or `thumbd token --init`) created.
pub fn load(data_dir: &Path) -> anyhow::Result<SecretString> {
    let path = data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(SecretString::from(s.trim().to_owned())),
        Ok(_) => anyhow::bail!(
            "{} is empty: delete it or set THUMBD_JWT_SECRET",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "no secret in {}: point --data-dir (THUMBD_DATA_DIR, --config) at the directory of the \
             `thumbd serve` whose tokens you want, set THUMBD_JWT_SECRET, or pass --init to create one",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Reads `DATA_DIR/jwt-secret`, creating it (random, 256 bits, mode 0600) if missing.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<SecretString> {
    let path = data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(SecretString::from(s.trim().to_owned())),
        Ok(_) => anyhow::bail!(
            "{} is empty: delete it or set THUMBD_JWT_SECRET",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let secret: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let mut options = std::fs::File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut f) => {
            f.write_all(secret.as_bytes())?;
            f.sync_all()?;
            tracing::info!(path = %path.display(), "created a JWT secret");
            Ok(SecretString::from(secret))
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(data_dir),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}
