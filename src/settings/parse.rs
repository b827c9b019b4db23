//! Typed values from the layered text of each setting, every problem collected with where
//! the value came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use thumbcore::{Output, Profiles, Rendition};

use super::{Database, KEYS, Storage};

/// Where a value came from, for error messages.
#[derive(Debug, Clone)]
pub(super) enum Origin {
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

pub(super) struct Parser<'a> {
    pub(super) raw: &'a BTreeMap<&'static str, (String, Origin)>,
    pub(super) errors: &'a mut Vec<String>,
}

impl Parser<'_> {
    pub(super) fn text(&self, key: &str) -> String {
        self.raw[key].0.clone()
    }

    pub(super) fn optional(&self, key: &str) -> Option<String> {
        Some(self.text(key)).filter(|v| !v.trim().is_empty())
    }

    pub(super) fn error(&mut self, key: &str, expected: &str) {
        let (value, origin) = &self.raw[key];
        self.errors
            .push(format!("{key} = {value:?} (from {origin}): {expected}"));
    }

    /// Parses the value; on error records it and returns the default's value (the result
    /// is thrown away anyway, but every other key still gets checked).
    pub(super) fn parse<T: std::str::FromStr>(&mut self, key: &str, expected: &str) -> T {
        let default = KEYS
            .iter()
            .find(|k| k.name == key)
            .map_or("", |k| k.default);
        let fallback = default.parse().ok().expect("defaults of parsed keys parse");
        self.parse_or(key, expected, fallback)
    }

    pub(super) fn parse_or<T: std::str::FromStr>(
        &mut self,
        key: &str,
        expected: &str,
        fallback: T,
    ) -> T {
        match self.text(key).trim().parse() {
            Ok(v) => v,
            Err(_) => {
                self.error(key, &format!("expected {expected}"));
                fallback
            }
        }
    }

    pub(super) fn positive<T: std::str::FromStr + PartialEq + From<u8>>(&mut self, key: &str) -> T {
        let v: T = self.parse_or(key, "a positive whole number", T::from(1));
        if v == T::from(0) {
            self.error(key, "must be greater than 0");
            return T::from(1);
        }
        v
    }

    pub(super) fn boolean(&mut self, key: &str) -> bool {
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

    pub(super) fn choice<T: Copy>(&mut self, key: &str, options: &[(&str, T)]) -> T {
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

    /// `default` (one rendition: `size` in `output`), then `profiles`, then
    /// `default_profile` chosen among them.
    pub(super) fn profiles(&mut self, size: (u32, u32), output: Output) -> Profiles {
        let default = Rendition {
            width: size.0,
            height: size.1,
            output,
        };
        let mut profiles = Profiles::new(vec![default]).unwrap_or_default();
        if let Err(e) = profiles.insert_all(&self.text("profiles")) {
            self.error("profiles", &e);
        }
        if profiles
            .get(Profiles::DEFAULT)
            .map(|p| p.renditions.as_slice())
            != Some(&[default])
        {
            self.error(
                "profiles",
                "`default` is built in (`thumbnail_size` in `output_format`): name yours otherwise",
            );
        }
        // `NAME` for every environment, or `ENVIRONMENT=NAME,…` for each its own.
        let defaults = self.text("default_profile");
        for part in defaults.split(',').map(str::trim) {
            let set = match part.split_once('=') {
                None => profiles.set_default(part),
                Some((env, name)) if matches!(env.trim(), "development" | "production") => {
                    profiles.set_default_for(env.trim(), name.trim())
                }
                Some((env, _)) => Err(format!(
                    "{env:?} is not an environment: write NAME, or development=NAME,production=NAME"
                )),
            };
            if let Err(e) = set {
                self.error("default_profile", &e);
            }
        }
        profiles
    }

    pub(super) fn size(&mut self, key: &str) -> (u32, u32) {
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

    pub(super) fn database(&mut self, data_dir: &Path) -> Database {
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

    pub(super) fn amqp_url(&mut self) -> Option<SecretString> {
        let url = self.optional("amqp_url")?;
        if url.starts_with("amqp://") || url.starts_with("amqps://") {
            Some(SecretString::from(url))
        } else {
            self.error("amqp_url", "expected amqp://user:pass@host:5672/vhost");
            None
        }
    }

    pub(super) fn storage(&mut self, data_dir: &Path) -> Storage {
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
