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
use thumbcore::{InputFormats, Output, Profiles};

use crate::role::Role;
use parse::{Origin, Parser};

mod keys;
mod parse;

pub use keys::{FILE_KEYS, KEYS, env_var};

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
    pub url_signing_key: Option<SecretString>,
    pub url_ttl: Duration,
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
    /// `default` (`thumbnail_size` in `output_format`) and the configured profiles, with the
    /// one creates without `profile` use.
    pub profiles: Profiles,
    pub budget_bytes: usize,
    pub resize_space: thumbcore::ResizeSpace,
    pub wait: Duration,
    pub max_wait: Duration,
    pub upload_ttl: Duration,
    pub allow_private_sources: bool,
    pub source_timeout: Duration,
    pub job_timeout: Duration,
    /// Waits between a webhook delivery's attempts.
    pub webhook_retry_schedule: Vec<Duration>,
    /// Webhook deliveries posted at once.
    pub webhook_concurrency: usize,
    /// Webhook URLs may reach non-public addresses.
    pub allow_private_webhooks: bool,
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

/// The `[profiles.NAME]` tables of a config file (`renditions = ["80:webp", …]`) in the
/// form `THUMBD_PROFILES` writes them: `NAME=R,R;NAME=R`.
fn profiles_from_tables(tables: &toml::Table) -> Result<String, String> {
    let mut parts = Vec::new();
    for (name, table) in tables {
        let list = table
            .as_table()
            .and_then(|t| t.get("renditions"))
            .and_then(toml::Value::as_array)
            .ok_or_else(|| {
                format!("[profiles.{name}] needs `renditions = [\"SIZE:FORMAT\", …]`")
            })?;
        let list = list
            .iter()
            .map(|r| {
                r.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("[profiles.{name}]: each rendition is a string"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        parts.push(format!("{name}={}", list.join(",")));
    }
    Ok(parts.join(";"))
}

/// The shortest HS256 secret accepted (RFC 7518 §3.2: a key at least as long as the hash).
const MIN_SECRET_BYTES: usize = 32;

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
    pub fn async_threads_for(&self, role: Role) -> usize {
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
                            // `[profiles.NAME]` tables, read as THUMBD_PROFILES writes them.
                            let v = match (k.as_str(), v) {
                                ("profiles", toml::Value::Table(t)) => {
                                    match profiles_from_tables(&t) {
                                        Ok(text) => toml::Value::String(text),
                                        Err(e) => {
                                            errors.push(format!("{}: {e}", path.display()));
                                            continue;
                                        }
                                    }
                                }
                                (_, v) => v,
                            };
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
                    errors.push(format!(
                        "{file_var}: only secrets may come from a file ({})",
                        FILE_KEYS
                            .iter()
                            .map(|k| env_var(k) + "_FILE")
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
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
        errors.extend(env.keys().filter_map(|var| keys::misspelled(var)));
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
            url_signing_key: p.optional("url_signing_key").map(SecretString::from),
            url_ttl: Duration::from_secs(p.positive("url_ttl")),
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
            profiles: Profiles::default(),
            budget_bytes: p.parse("budget_bytes", "a whole number of bytes (0 = no budget)"),
            resize_space: p.parse("resize_space", "srgb or linear"),
            wait: Duration::from_secs(p.parse("wait", "whole seconds")),
            max_wait: Duration::from_secs(p.parse("max_wait", "whole seconds")),
            upload_ttl: Duration::from_secs(p.positive("upload_ttl")),
            allow_private_sources: p.boolean("allow_private_sources"),
            source_timeout: Duration::from_secs(p.positive("source_timeout")),
            job_timeout: Duration::from_secs(p.positive("job_timeout")),
            webhook_retry_schedule: p
                .parse::<SecondsList>(
                    "webhook_retry_schedule",
                    "a comma-separated list of whole seconds (at least one)",
                )
                .0,
            webhook_concurrency: p.positive("webhook_concurrency"),
            allow_private_webhooks: p.boolean("allow_private_webhooks"),
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
        if settings.output_format.format == thumbcore::ImageFormat::Avif {
            p.error(
                "output_format",
                "AVIF is made after the job, in the background: list avif renditions in a profile (`profiles`) beside one in png, jpeg or webp",
            );
        }
        settings.profiles = p.profiles(settings.thumbnail_size, settings.output_format);
        for (name, secret) in [
            ("jwt_secret", &settings.jwt_secret),
            ("url_signing_key", &settings.url_signing_key),
        ] {
            if let Some(secret) = secret
                && secret.expose_secret().len() < MIN_SECRET_BYTES
            {
                // Never its value: only its length.
                errors.push(format!(
                    "{name}: {} bytes is too short to resist guessing; use at least {MIN_SECRET_BYTES} random bytes (e.g. `openssl rand -hex 32`)",
                    secret.expose_secret().len()
                ));
            }
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

#[cfg(test)]
mod tests;

/// `5,30,120`: a non-empty list of whole seconds.
struct SecondsList(Vec<Duration>);

impl std::str::FromStr for SecondsList {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let list = s
            .split(',')
            .map(|n| {
                n.trim()
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| ())
            })
            .collect::<Result<Vec<_>, ()>>()?;
        if list.is_empty() {
            Err(())
        } else {
            Ok(SecondsList(list))
        }
    }
}
