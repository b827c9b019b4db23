//! `Settings`: every setting of thumbd, typed, from defaults, then a TOML file, then
//! `THUMBD_*` environment variables, then command-line flags. Every error is reported at once.
//!
//! [`KEYS`] is the one list of settings: the loader, `--help` and the README's table come
//! from it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use thumbcore::{InputFormats, Output};

/// One setting: its key (TOML, and `THUMBD_<KEY>` upper-cased), default and meaning.
pub struct Key {
    /// TOML key; the environment variable is `THUMBD_` + this upper-cased.
    pub name: &'static str,
    /// The default, as text (empty: unset).
    pub default: &'static str,
    /// What it does.
    pub help: &'static str,
}

/// Every setting, in the order the README documents them.
pub const KEYS: &[Key] = &[
    Key {
        name: "listen",
        default: "127.0.0.1:8080",
        help: "API address",
    },
    Key {
        name: "data_dir",
        default: "./thumbd-data",
        help: "where the embedded backends keep their files",
    },
    Key {
        name: "database_url",
        default: "",
        help: "metadata store: unset = SQLite file `thumbd.db` in the data dir, `sqlite://PATH`, or `postgres://user:pass@host/db` (distributed mode)",
    },
    Key {
        name: "amqp_url",
        default: "",
        help: "unset = embedded queue (in the SQLite file); `amqp://user:pass@host:5672/vhost` = RabbitMQ (distributed mode)",
    },
    Key {
        name: "amqp_namespace",
        default: "thumbd",
        help: "prefix of the RabbitMQ exchange and queue names (`thumbd` → exchange `thumbd`, queue `thumbd.jobs`); change it only to run several deployments on one vhost",
    },
    Key {
        name: "storage_url",
        default: "",
        help: "blob store: unset = `blobs/` in the data dir, `file:///ABS/PATH`, or `s3://BUCKET?endpoint=URL&region=R[&prefix=P]` (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
    },
    Key {
        name: "durability",
        default: "full",
        help: "`full`: accepted jobs and thumbnails survive power loss (SQLite FULL, fsync); `process`: they survive thumbd being killed, not the machine stopping (faster writes)",
    },
    Key {
        name: "jwt_secret",
        default: "",
        help: "HS256 key; unset = a random secret kept in `DATA_DIR/jwt-secret`",
    },
    Key {
        name: "jwt_public_key",
        default: "",
        help: "PEM file of an RS256 or EdDSA public key; replaces the HS256 secret for checking tokens",
    },
    Key {
        name: "jwt_algorithm",
        default: "rs256",
        help: "algorithm of `jwt_public_key`: rs256 or eddsa",
    },
    Key {
        name: "jwt_issuer",
        default: "",
        help: "when set, tokens must carry this `iss` claim",
    },
    Key {
        name: "jwt_audience",
        default: "",
        help: "when set, tokens must carry this `aud` claim (or a list naming it)",
    },
    Key {
        name: "tenant_claim",
        default: "tenant",
        help: "the token claim naming the caller's tenant (1-64 of A-Z a-z 0-9 . _ -); a token without it belongs to the tenant `default`",
    },
    Key {
        name: "auth",
        default: "on",
        help: "`off` turns authentication off (every request allowed), with a loud warning",
    },
    Key {
        name: "public_reads",
        default: "false",
        help: "GET thumbnails and job status without a token",
    },
    Key {
        name: "workers",
        default: "",
        help: "images decoded and resized at once per process; unset = number of cores",
    },
    Key {
        name: "async_threads",
        default: "",
        help: "threads of the async runtime (HTTP, database, queue); unset = 1 per 4 image threads (at least 1) for `serve` and `worker`, the number of cores for `api`",
    },
    Key {
        name: "prefetch",
        default: "",
        help: "jobs a worker leases at once (I/O overlaps image work), and in `serve` also how many waiting creates it runs straight from their requests; unset = 2 × workers",
    },
    Key {
        name: "downloads",
        default: "16",
        help: "URL sources a worker downloads at once, in slots of their own (a slow source never holds a `prefetch` slot)",
    },
    Key {
        name: "downloads_per_tenant",
        default: "8",
        help: "of those, how many one tenant may hold at once (its next URL source waits in the queue)",
    },
    Key {
        name: "pixel_budget",
        default: "100000000",
        help: "decoding memory at once across a process's jobs, in pixels of 4 bytes (default 400 MB); a job counts what its decode really holds (a progressive JPEG's coefficients too)",
    },
    Key {
        name: "max_body_bytes",
        default: "5242880",
        help: "largest accepted image, in bytes (413 above)",
    },
    Key {
        name: "max_pixels",
        default: "50000000",
        help: "largest accepted image, in pixels, checked from the header",
    },
    Key {
        name: "accept_formats",
        default: "png,jpeg",
        help: "input formats accepted, comma-separated: png, jpeg, webp, gif (GIF and animated WebP: the first frame, and the job result says `animated: true`); another type is refused as unsupported (422 `InvalidHeaderValue` for its Content-Type, `InvalidThumbnailFormat` for its bytes)",
    },
    Key {
        name: "thumbnail_size",
        default: "330",
        help: "box the thumbnail fits in: `330` or `WIDTHxHEIGHT`",
    },
    Key {
        name: "output_format",
        default: "png",
        help: "`png`, `jpeg[:QUALITY]` (default 85), `webp[:QUALITY]` (lossy, default 80) or `webp:lossless`; QUALITY is 1-100, lowered in steps when a thumbnail is over `budget_bytes`",
    },
    Key {
        name: "budget_bytes",
        default: "300000",
        help: "size the encoder aims under; 0 = no budget",
    },
    Key {
        name: "resize_space",
        default: "srgb",
        help: "`srgb`: Lanczos3 on sRGB values, as vipsthumbnail and Pillow do; `linear`: in linear light, so text, line art and fine bright-on-dark detail keep their weight (about twice the resize time and memory)",
    },
    Key {
        name: "wait",
        default: "2",
        help: "seconds a create waits for its job before answering 202",
    },
    Key {
        name: "max_wait",
        default: "10",
        help: "cap on `Prefer: wait=N`, in seconds",
    },
    Key {
        name: "upload_ttl",
        default: "3600",
        help: "seconds an upload ticket (`POST /v1/uploads`) stays valid; expired uploads are deleted",
    },
    Key {
        name: "allow_private_sources",
        default: "false",
        help: "let URL sources reach loopback, private and link-local addresses (tests; never in production)",
    },
    Key {
        name: "source_timeout",
        default: "30",
        help: "seconds a worker may spend downloading a URL source (its size is capped by max_body_bytes)",
    },
    Key {
        name: "job_timeout",
        default: "30",
        help: "seconds one image may take from decode to encode; past it the job fails `ProcessingTimeout`",
    },
    Key {
        name: "rate_limit",
        default: "50",
        help: "requests per second per client (token subject, else IP address) on /v1, bursts of twice that; 0 = off",
    },
    Key {
        name: "job_retention_hours",
        default: "168",
        help: "finished job records are kept this long (at least 24)",
    },
    Key {
        name: "log_format",
        default: "text",
        help: "text or json (to stderr); the level comes from RUST_LOG (default info)",
    },
];

/// Where the metadata store lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// The embedded SQLite file.
    Sqlite(PathBuf),
    /// PostgreSQL (the URL may hold a password).
    Postgres(SecretString),
}

/// Where originals and thumbnails are kept.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A directory (shared by every process in distributed mode on one machine).
    Files(PathBuf),
    /// An S3-compatible bucket: `s3://bucket?endpoint=…&region=…[&prefix=…]`; credentials
    /// from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (never in the URL).
    S3(String),
}

/// Typed settings. Secrets are [`SecretString`]s: `Debug` never prints them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: Database,
    pub amqp_url: Option<SecretString>,
    pub amqp_namespace: String,
    pub storage: Storage,
    pub durability: thumbd_jobs::Durability,
    pub jwt_secret: Option<SecretString>,
    pub jwt_public_key: Option<PathBuf>,
    pub jwt_algorithm: thumbd_api::PublicKeyAlgorithm,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub tenant_claim: String,
    pub auth: bool,
    pub public_reads: bool,
    pub workers: usize,
    /// Threads of the async runtime; `None` = chosen by role ([`Settings::async_threads_for`]).
    pub async_threads: Option<usize>,
    pub prefetch: usize,
    pub downloads: usize,
    pub downloads_per_tenant: usize,
    pub pixel_budget: u64,
    pub max_body_bytes: usize,
    pub max_pixels: u64,
    pub accept_formats: InputFormats,
    pub thumbnail_size: (u32, u32),
    pub output_format: Output,
    pub budget_bytes: usize,
    pub resize_space: thumbcore::ResizeSpace,
    pub wait: Duration,
    pub max_wait: Duration,
    pub upload_ttl: Duration,
    pub allow_private_sources: bool,
    pub source_timeout: Duration,
    pub job_timeout: Duration,
    pub rate_limit: u32,
    pub job_retention: Duration,
    pub log_json: bool,
}

/// Claims thumbd reads for their own meaning: none of them can name the tenant.
const RESERVED_CLAIMS: &[&str] = &[
    "sub",
    "exp",
    "iat",
    "nbf",
    "iss",
    "aud",
    "scope",
    "environment",
];

/// Settings that may come from a file named by `THUMBD_<KEY>_FILE`: the secrets and the URLs
/// that carry passwords.
pub const FILE_KEYS: &[&str] = &["jwt_secret", "database_url", "amqp_url"];

/// The shortest HS256 secret accepted (RFC 7518 §3.2: a key at least as long as the hash).
const MIN_SECRET_BYTES: usize = 32;

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Flag,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env(v) => f.write_str(v),
            Origin::Flag => f.write_str("command line"),
        }
    }
}

/// The environment variable of a key.
pub fn env_var(key: &str) -> String {
    format!("THUMBD_{}", key.to_ascii_uppercase())
}

/// Cores this process may use (2 if the system will not say): the default for `workers`
/// and for an `api` process's async threads.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Settings {
    /// Threads for the async runtime of a `role` process. Image work has its own threads
    /// (`workers`); the async side only moves bytes and waits on I/O, so beside image
    /// threads a few are plenty, and each extra one costs: an idle runtime thread woken for
    /// every I/O event preempts an image thread (measured on 2 cores: 2 runtime threads
    /// instead of 1 cost the image threads 8 % more CPU per image).
    pub fn async_threads_for(&self, role: crate::backends::Role) -> usize {
        use crate::backends::Role;
        self.async_threads.unwrap_or(match role {
            Role::Serve | Role::Worker => self.workers.div_ceil(4).max(1),
            Role::Api => cores(),
        })
    }

    /// Loads settings: defaults, then `config` (TOML), then `env` (`THUMBD_*` pairs), then
    /// `flags` (`key=value`). Returns every problem found, not just the first.
    pub fn load(
        config: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &[(String, String)],
    ) -> Result<Settings, Vec<String>> {
        let mut errors = Vec::new();
        let mut raw: BTreeMap<&'static str, (String, Origin)> = KEYS
            .iter()
            .map(|k| (k.name, (k.default.to_owned(), Origin::Default)))
            .collect();
        let known = |name: &str| KEYS.iter().find(|k| k.name == name).map(|k| k.name);

        if let Some(path) = config {
            match std::fs::read_to_string(path) {
                Err(e) => errors.push(format!("{}: cannot read: {e}", path.display())),
                Ok(text) => match text.parse::<toml::Table>() {
                    Err(e) => errors.push(format!("{}: not valid TOML: {e}", path.display())),
                    Ok(table) => {
                        for (k, v) in table {
                            let Some(name) = known(&k) else {
                                errors.push(format!("{}: unknown setting `{k}`", path.display()));
                                continue;
                            };
                            let text = match v {
                                toml::Value::String(s) => s,
                                toml::Value::Integer(i) => i.to_string(),
                                toml::Value::Float(f) => f.to_string(),
                                toml::Value::Boolean(b) => b.to_string(),
                                other => {
                                    errors.push(format!(
                                        "{}: `{k}` must be a string, number or boolean, not {}",
                                        path.display(),
                                        other.type_str()
                                    ));
                                    continue;
                                }
                            };
                            raw.insert(name, (text, Origin::File(path.to_path_buf())));
                        }
                    }
                },
            }
        }
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for key in KEYS {
            let var = env_var(key.name);
            if let Some(v) = env.get(&var) {
                raw.insert(key.name, (v.clone(), Origin::Env(var.clone())));
            }
            // A secret may come from a file (a Kubernetes secret mounted as one), its
            // content read once here, never printed.
            let file_var = format!("{var}_FILE");
            if let Some(path) = env.get(&file_var) {
                if !FILE_KEYS.contains(&key.name) {
                    continue;
                }
                if env.contains_key(&var) {
                    errors.push(format!("{var} and {file_var} are both set: keep one"));
                    continue;
                }
                match std::fs::read_to_string(path) {
                    Ok(text) => {
                        raw.insert(
                            key.name,
                            (text.trim_end().to_owned(), Origin::Env(file_var)),
                        );
                    }
                    Err(e) => errors.push(format!("{file_var}: cannot read {path}: {e}")),
                }
            }
        }
        for (k, v) in flags {
            match known(k) {
                Some(name) => {
                    raw.insert(name, (v.clone(), Origin::Flag));
                }
                None => errors.push(format!("command line: unknown setting `{k}`")),
            }
        }

        let mut p = Parser {
            raw: &raw,
            errors: &mut errors,
        };
        let data_dir = PathBuf::from(p.text("data_dir"));
        let mut settings = Settings {
            listen: p.parse("listen", "an address like 127.0.0.1:8080"),
            database: p.database(&data_dir),
            amqp_url: p.amqp_url(),
            amqp_namespace: p.text("amqp_namespace"),
            storage: p.storage(&data_dir),
            durability: p.choice(
                "durability",
                &[
                    ("full", thumbd_jobs::Durability::Full),
                    ("process", thumbd_jobs::Durability::Process),
                ],
            ),
            jwt_secret: p.optional("jwt_secret").map(SecretString::from),
            jwt_public_key: p.optional("jwt_public_key").map(PathBuf::from),
            jwt_algorithm: p.choice(
                "jwt_algorithm",
                &[
                    ("rs256", thumbd_api::PublicKeyAlgorithm::Rs256),
                    ("eddsa", thumbd_api::PublicKeyAlgorithm::EdDsa),
                ],
            ),
            jwt_issuer: p.optional("jwt_issuer"),
            jwt_audience: p.optional("jwt_audience"),
            tenant_claim: {
                let claim = p.text("tenant_claim").trim().to_owned();
                if claim.is_empty() || RESERVED_CLAIMS.contains(&claim.as_str()) {
                    p.error(
                        "tenant_claim",
                        "must name a claim of its own, not one thumbd reads for something else (sub, exp, iat, nbf, iss, aud, scope, environment)",
                    );
                }
                claim
            },
            auth: p.choice("auth", &[("on", true), ("off", false)]),
            public_reads: p.boolean("public_reads"),
            workers: match p.optional("workers") {
                None => cores(),
                Some(_) => p.positive("workers"),
            },
            async_threads: p
                .optional("async_threads")
                .map(|_| p.positive("async_threads")),
            prefetch: match p.optional("prefetch") {
                None => 0,
                Some(_) => p.positive("prefetch"),
            },
            downloads: p.positive("downloads"),
            downloads_per_tenant: p.positive("downloads_per_tenant"),
            pixel_budget: p.positive("pixel_budget"),
            max_body_bytes: p.positive("max_body_bytes"),
            max_pixels: p.positive("max_pixels"),
            accept_formats: p.parse(
                "accept_formats",
                "a comma-separated list of png, jpeg, webp, gif",
            ),
            thumbnail_size: p.size("thumbnail_size"),
            output_format: p.parse(
                "output_format",
                "png, jpeg[:QUALITY], webp[:QUALITY] or webp:lossless (QUALITY 1-100)",
            ),
            budget_bytes: p.parse("budget_bytes", "a whole number of bytes (0 = no budget)"),
            resize_space: p.parse("resize_space", "srgb or linear"),
            wait: Duration::from_secs(p.parse("wait", "whole seconds")),
            max_wait: Duration::from_secs(p.parse("max_wait", "whole seconds")),
            upload_ttl: Duration::from_secs(p.positive("upload_ttl")),
            allow_private_sources: p.boolean("allow_private_sources"),
            source_timeout: Duration::from_secs(p.positive("source_timeout")),
            job_timeout: Duration::from_secs(p.positive("job_timeout")),
            rate_limit: p.parse("rate_limit", "whole requests per second (0 = off)"),
            job_retention: {
                let hours: u64 = p.parse("job_retention_hours", "whole hours, at least 24");
                if hours < 24 {
                    p.error(
                        "job_retention_hours",
                        "must be at least 24 (job records are kept at least 24 h: README, Configuration)",
                    );
                }
                Duration::from_secs(hours * 3600)
            },
            log_json: p.choice("log_format", &[("text", false), ("json", true)]),
            data_dir,
        };
        if let Some(secret) = &settings.jwt_secret
            && secret.expose_secret().len() < MIN_SECRET_BYTES
        {
            // Never its value: only its length.
            errors.push(format!(
                "jwt_secret: {} bytes is too short to resist guessing; use at least {MIN_SECRET_BYTES} random bytes (e.g. `openssl rand -hex 32`)",
                secret.expose_secret().len()
            ));
        }
        if settings.prefetch == 0 {
            settings.prefetch = 2 * settings.workers;
        } else if settings.prefetch < settings.workers {
            errors.push(format!(
                "prefetch: {} is less than workers ({}): a worker would never use all its image threads",
                settings.prefetch, settings.workers
            ));
        }
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }

    /// The thumbnail every job makes.
    pub fn thumb_spec(&self) -> thumbcore::ThumbSpec {
        let mut spec = thumbcore::ThumbSpec {
            max_width: self.thumbnail_size.0,
            max_height: self.thumbnail_size.1,
            budget_bytes: (self.budget_bytes > 0).then_some(self.budget_bytes),
            resize_space: self.resize_space,
            limits: self.limits(),
            ..thumbcore::ThumbSpec::default()
        };
        self.output_format.apply(&mut spec);
        spec
    }

    /// Input limits and the time limit of one image.
    pub fn limits(&self) -> thumbcore::Limits {
        thumbcore::Limits {
            max_input_bytes: self.max_body_bytes,
            max_pixels: self.max_pixels,
            max_duration: Some(self.job_timeout),
            accept_formats: self.accept_formats,
            ..thumbcore::Limits::default()
        }
    }
}

struct Parser<'a> {
    raw: &'a BTreeMap<&'static str, (String, Origin)>,
    errors: &'a mut Vec<String>,
}

impl Parser<'_> {
    fn text(&self, key: &str) -> String {
        self.raw[key].0.clone()
    }

    fn optional(&self, key: &str) -> Option<String> {
        Some(self.text(key)).filter(|v| !v.trim().is_empty())
    }

    fn error(&mut self, key: &str, expected: &str) {
        let (value, origin) = &self.raw[key];
        self.errors
            .push(format!("{key} = {value:?} (from {origin}): {expected}"));
    }

    /// Parses the value; on error records it and returns the default's value (the result
    /// is thrown away anyway, but every other key still gets checked).
    fn parse<T: std::str::FromStr>(&mut self, key: &str, expected: &str) -> T {
        let default = KEYS
            .iter()
            .find(|k| k.name == key)
            .map_or("", |k| k.default);
        let fallback = default.parse().ok().expect("defaults of parsed keys parse");
        self.parse_or(key, expected, fallback)
    }

    fn parse_or<T: std::str::FromStr>(&mut self, key: &str, expected: &str, fallback: T) -> T {
        match self.text(key).trim().parse() {
            Ok(v) => v,
            Err(_) => {
                self.error(key, &format!("expected {expected}"));
                fallback
            }
        }
    }

    fn positive<T: std::str::FromStr + PartialEq + From<u8>>(&mut self, key: &str) -> T {
        let v: T = self.parse_or(key, "a positive whole number", T::from(1));
        if v == T::from(0) {
            self.error(key, "must be greater than 0");
            return T::from(1);
        }
        v
    }

    fn boolean(&mut self, key: &str) -> bool {
        self.choice(
            key,
            &[
                ("true", true),
                ("false", false),
                ("1", true),
                ("0", false),
                ("yes", true),
                ("no", false),
            ],
        )
    }

    fn choice<T: Copy>(&mut self, key: &str, options: &[(&str, T)]) -> T {
        let value = self.text(key).trim().to_ascii_lowercase();
        match options.iter().find(|(name, _)| *name == value) {
            Some(&(_, v)) => v,
            None => {
                let names: Vec<_> = options.iter().map(|(n, _)| *n).collect();
                self.error(key, &format!("expected one of {}", names.join(", ")));
                options[0].1
            }
        }
    }

    fn size(&mut self, key: &str) -> (u32, u32) {
        let text = self.text(key);
        let parse = |v: &str| v.trim().parse::<u32>().ok().filter(|&n| n > 0);
        let size = match text.split_once(['x', 'X']) {
            Some((w, h)) => parse(w).zip(parse(h)),
            None => parse(&text).map(|n| (n, n)),
        };
        size.unwrap_or_else(|| {
            self.error(key, "expected a size like 330 or 330x200");
            (330, 330)
        })
    }

    fn database(&mut self, data_dir: &Path) -> Database {
        match self.optional("database_url") {
            None => Database::Sqlite(data_dir.join("thumbd.db")),
            Some(url) => match url.strip_prefix("sqlite://") {
                Some(path) if !path.is_empty() => Database::Sqlite(PathBuf::from(path)),
                _ if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                    Database::Postgres(SecretString::from(url))
                }
                _ => {
                    self.error(
                        "database_url",
                        "expected sqlite://PATH or postgres://user:pass@host/db",
                    );
                    Database::Sqlite(PathBuf::new())
                }
            },
        }
    }

    fn amqp_url(&mut self) -> Option<SecretString> {
        let url = self.optional("amqp_url")?;
        if url.starts_with("amqp://") || url.starts_with("amqps://") {
            Some(SecretString::from(url))
        } else {
            self.error("amqp_url", "expected amqp://user:pass@host:5672/vhost");
            None
        }
    }

    fn storage(&mut self, data_dir: &Path) -> Storage {
        match self.optional("storage_url") {
            None => Storage::Files(data_dir.join("blobs")),
            Some(url) => match url.strip_prefix("file://") {
                Some(path) if path.starts_with('/') => Storage::Files(PathBuf::from(path)),
                _ if url.starts_with("s3://") => match thumbd_s3::S3Location::parse(&url) {
                    Ok(_) => Storage::S3(url),
                    Err(e) => {
                        self.error("storage_url", &e.to_string());
                        Storage::Files(PathBuf::new())
                    }
                },
                _ => {
                    self.error(
                        "storage_url",
                        "expected file:///ABSOLUTE/PATH or s3://BUCKET?endpoint=…&region=…",
                    );
                    Storage::Files(PathBuf::new())
                }
            },
        }
    }
}

#[cfg(test)]
/// The README's settings table rows (between `<!-- settings:table -->` markers).
pub fn markdown_table() -> String {
    let header = "| TOML key | environment variable | default | meaning |\n|---|---|---|---|\n";
    header.to_owned()
        + &KEYS
            .iter()
            .map(|k| {
                let default = if k.default.is_empty() {
                    "unset".to_owned()
                } else {
                    format!("`{}`", k.default)
                };
                format!(
                    "| `{}` | `{}` | {default} | {} |\n",
                    k.name,
                    env_var(k.name),
                    k.help
                )
            })
            .collect::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README documents every setting, exactly as `KEYS` says.
    /// `THUMBD_UPDATE_README=1 cargo test -p thumbd readme` rewrites the table.
    #[test]
    fn readme_documents_every_setting() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let (head, rest) = readme
            .split_once("<!-- settings:table -->\n")
            .expect("start marker");
        let (_, tail) = rest
            .split_once("<!-- settings:end -->")
            .expect("end marker");
        let expected = format!(
            "{head}<!-- settings:table -->\n{}<!-- settings:end -->{tail}",
            markdown_table()
        );
        if std::env::var_os("THUMBD_UPDATE_README").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        assert!(
            readme == expected,
            "README settings table is stale: run THUMBD_UPDATE_README=1 cargo test -p thumbd readme"
        );
    }

    fn load(
        toml: Option<&str>,
        env: &[(&str, &str)],
        flags: &[(&str, &str)],
    ) -> Result<Settings, Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("thumbd.toml");
        if let Some(t) = toml {
            std::fs::write(&path, t).unwrap();
        }
        Settings::load(
            toml.map(|_| path.as_path()),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            &flags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn defaults_work_without_anything() {
        let s = load(None, &[], &[]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert!(
            matches!(&s.database, Database::Sqlite(p) if p == Path::new("./thumbd-data/thumbd.db"))
        );
        assert!(s.amqp_url.is_none());
        assert!(matches!(&s.storage, Storage::Files(p) if p == Path::new("./thumbd-data/blobs")));
        assert!(s.auth && !s.public_reads && s.jwt_secret.is_none());
        assert_eq!(s.thumbnail_size, (330, 330));
        assert_eq!(s.wait, Duration::from_secs(2));
    }

    #[test]
    fn layers_in_order() {
        let s = load(
            Some("listen = \"0.0.0.0:1\"\nworkers = 3\nwait = 1\n"),
            &[("THUMBD_WORKERS", "5"), ("THUMBD_UNRELATED", "x")],
            &[("wait", "4")],
        )
        .unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:1", "file over default");
        assert_eq!(s.workers, 5, "environment over file");
        assert_eq!(s.wait, Duration::from_secs(4), "flag over environment");
        assert_eq!(s.prefetch, 10, "prefetch defaults to twice the workers");
    }

    #[test]
    fn prefetch_is_at_least_workers() {
        let s = load(None, &[("THUMBD_WORKERS", "2")], &[("prefetch", "3")]).unwrap();
        assert_eq!((s.workers, s.prefetch), (2, 3));
        let errors = load(None, &[("THUMBD_WORKERS", "4")], &[("prefetch", "3")]).unwrap_err();
        assert!(
            errors.len() == 1 && errors[0].contains("prefetch: 3 is less than workers (4)"),
            "{errors:?}"
        );
    }

    #[test]
    fn every_error_at_once() {
        let errors = load(
            Some("colour = \"blue\"\nworkers = 0\n"),
            &[("THUMBD_LISTEN", "nowhere"), ("THUMBD_AUTH", "maybe")],
            &[("thumbnail_size", "big")],
        )
        .unwrap_err();
        let all = errors.join("\n");
        for needle in [
            "unknown setting `colour`",
            "workers",
            "THUMBD_LISTEN",
            "auth",
            "thumbnail_size",
        ] {
            assert!(all.contains(needle), "{needle} missing from:\n{all}");
        }
        assert_eq!(errors.len(), 5, "{all}");
    }

    #[test]
    fn job_timeout_is_the_time_limit_of_every_thumbnail() {
        let s = load(None, &[], &[]).unwrap();
        assert_eq!(s.job_timeout, Duration::from_secs(30));
        let s = load(None, &[("THUMBD_JOB_TIMEOUT", "7")], &[]).unwrap();
        assert_eq!(
            s.thumb_spec().limits.max_duration,
            Some(Duration::from_secs(7))
        );
        let errors = load(None, &[("THUMBD_JOB_TIMEOUT", "0")], &[]).unwrap_err();
        assert!(errors[0].contains("job_timeout"), "{errors:?}");
    }

    #[test]
    fn input_formats_are_opt_in() {
        let s = load(None, &[], &[]).unwrap();
        assert_eq!(s.limits().accept_formats, InputFormats::DEFAULT);
        assert_eq!(s.thumb_spec().limits.accept_formats.to_string(), "png,jpeg");
        let s = load(None, &[("THUMBD_ACCEPT_FORMATS", "png,jpeg,gif")], &[]).unwrap();
        assert!(
            s.thumb_spec()
                .limits
                .accept_formats
                .contains(thumbcore::ImageFormat::Gif)
        );
        let s = load(Some("accept_formats = \"webp, png\"\n"), &[], &[]).unwrap();
        assert_eq!(s.limits().accept_formats.to_string(), "png,webp");
        for bad in ["", "png,bmp", "heic"] {
            let errors = load(None, &[("THUMBD_ACCEPT_FORMATS", bad)], &[]).unwrap_err();
            assert!(errors[0].contains("accept_formats"), "{bad}: {errors:?}");
        }
    }

    #[test]
    fn output_format_takes_a_quality() {
        use thumbcore::ImageFormat;
        let spec = load(None, &[], &[]).unwrap().thumb_spec();
        assert_eq!(spec.format, ImageFormat::Png);
        let spec = load(None, &[("THUMBD_OUTPUT_FORMAT", "webp")], &[])
            .unwrap()
            .thumb_spec();
        assert_eq!(
            (spec.format, spec.webp_quality),
            (ImageFormat::WebP, Some(80))
        );
        let spec = load(None, &[("THUMBD_OUTPUT_FORMAT", "webp:lossless")], &[])
            .unwrap()
            .thumb_spec();
        assert_eq!((spec.format, spec.webp_quality), (ImageFormat::WebP, None));
        let spec = load(None, &[("THUMBD_OUTPUT_FORMAT", "jpeg:92")], &[])
            .unwrap()
            .thumb_spec();
        assert_eq!((spec.format, spec.jpeg_quality), (ImageFormat::Jpeg, 92));
        for bad in ["webp:0", "webp:101", "png:50", "gif", "jpeg:lossless"] {
            let errors = load(None, &[("THUMBD_OUTPUT_FORMAT", bad)], &[]).unwrap_err();
            assert!(errors[0].contains("output_format"), "{bad}: {errors:?}");
        }
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = load(
            None,
            &[(
                "THUMBD_JWT_SECRET",
                "hunter2-very-secret-and-long-enough-now",
            )],
            &[],
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn the_tenant_claim_cannot_be_one_read_for_something_else() {
        for claim in ["iss", "aud", "sub", "environment", ""] {
            let errors = load(None, &[("THUMBD_TENANT_CLAIM", claim)], &[]).unwrap_err();
            assert!(errors[0].contains("tenant_claim"), "{claim}: {errors:?}");
        }
        let s = load(None, &[("THUMBD_TENANT_CLAIM", "org_id")], &[]).unwrap();
        assert_eq!(s.tenant_claim, "org_id");
    }

    #[test]
    fn secrets_may_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("jwt-secret");
        std::fs::write(&secret, "s3cret-from-a-mounted-file-0123456789\n").unwrap();
        let file = secret.to_str().unwrap();
        let s = load(None, &[("THUMBD_JWT_SECRET_FILE", file)], &[]).unwrap();
        assert_eq!(
            s.jwt_secret.unwrap().expose_secret(),
            "s3cret-from-a-mounted-file-0123456789",
            "the file's content, without its trailing newline"
        );
        let errors = load(
            None,
            &[
                ("THUMBD_JWT_SECRET_FILE", file),
                ("THUMBD_JWT_SECRET", "x".repeat(40).as_str()),
            ],
            &[],
        )
        .unwrap_err();
        assert!(errors[0].contains("both set"), "{errors:?}");
        let missing = dir.path().join("none");
        let errors = load(
            None,
            &[("THUMBD_JWT_SECRET_FILE", missing.to_str().unwrap())],
            &[],
        )
        .unwrap_err();
        assert!(errors[0].contains("cannot read"), "{errors:?}");
        assert!(!errors.join(" ").contains("s3cret"));
    }

    #[test]
    fn a_short_secret_is_refused_without_being_printed() {
        let errors = load(None, &[("THUMBD_JWT_SECRET", "hunter2-short")], &[]).unwrap_err();
        assert!(
            errors.len() == 1 && errors[0].contains("jwt_secret: 13 bytes is too short"),
            "{errors:?}"
        );
        assert!(!errors[0].contains("hunter2"), "{errors:?}");
        let long = "x".repeat(MIN_SECRET_BYTES);
        assert!(load(None, &[("THUMBD_JWT_SECRET", &long)], &[]).is_ok());
    }
}
