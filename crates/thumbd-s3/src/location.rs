//! `S3Location`: which bucket, where, parsed from `s3://bucket?endpoint=…&region=…`.

use std::fmt;

use thumbd_jobs::{Error, Result};

const WHAT: &str = "storage URL";

/// A bucket and how to reach it: everything a storage URL says, and never a credential.
///
/// The form (`THUMBD_STORAGE_URL`):
///
/// ```text
/// s3://BUCKET[?endpoint=URL][&region=REGION][&prefix=A/B][&allow_http=true|false]
/// ```
///
/// - `endpoint`: an S3-compatible server (`http://127.0.0.1:9000`); requests are then
///   path-style (`ENDPOINT/BUCKET/KEY`), which every S3-compatible server understands.
///   Without it, AWS S3 (or `AWS_ENDPOINT_URL` from the environment).
/// - `region`: signs the requests; default `AWS_REGION` / `AWS_DEFAULT_REGION`, else
///   `us-east-1`.
/// - `prefix`: every key is stored under `PREFIX/`, so thumbd can share a bucket.
/// - `allow_http`: plain HTTP; implied by an `http://` endpoint.
///
/// Values may be percent-encoded. Credentials in the URL are refused: they come from the
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or
/// [`S3Options::credentials`](crate::S3Options::credentials), so a logged URL leaks nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket's name.
    pub bucket: String,
    /// The server, `http(s)://host[:port]`; `None` for AWS S3.
    pub endpoint: Option<String>,
    /// The signing region; `None` for the environment's or `us-east-1`.
    pub region: Option<String>,
    /// Keys are stored under `prefix/`; segments as in a `BlobKey`, no leading or trailing `/`.
    pub prefix: Option<String>,
    /// Whether plain HTTP is allowed (true for an `http://` endpoint).
    pub allow_http: bool,
}

impl S3Location {
    /// Parses `s3://bucket?endpoint=…&region=…&prefix=…&allow_http=…`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the part that is wrong; the message never repeats the URL's
    /// user-info, so a mistakenly embedded secret is not echoed.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("expected s3://BUCKET?endpoint=…&region=…"))?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        if authority.contains('@') {
            return Err(invalid(
                "credentials do not belong in the storage URL: set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment",
            ));
        }
        let bucket = match authority.split_once('/') {
            None | Some((_, "")) => authority.trim_end_matches('/'),
            Some(_) => {
                return Err(invalid(
                    "a path after the bucket is not supported: use ?prefix=A/B",
                ));
            }
        };
        check_bucket(bucket)?;

        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| invalid(format!("malformed query: {e}")))?;
        let mut location = S3Location {
            bucket: bucket.to_owned(),
            endpoint: None,
            region: None,
            prefix: None,
            allow_http: false,
        };
        let mut allow_http = None;
        let mut seen = Vec::new();
        for (key, value) in pairs {
            if seen.contains(&key) {
                return Err(invalid(format!("{key} is given twice")));
            }
            match key.as_str() {
                "endpoint" => location.endpoint = Some(check_endpoint(&value)?),
                "region" => location.region = Some(check_region(&value)?),
                "prefix" => location.prefix = check_prefix(&value)?,
                "allow_http" => {
                    allow_http = Some(match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid("allow_http must be true or false")),
                    });
                }
                _ => {
                    return Err(invalid(format!(
                        "unknown parameter {key:?} (expected endpoint, region, prefix, allow_http)"
                    )));
                }
            }
            seen.push(key);
        }
        let http_endpoint = location
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        location.allow_http = match allow_http {
            Some(false) if http_endpoint => {
                return Err(invalid("allow_http=false contradicts an http:// endpoint"));
            }
            Some(explicit) => explicit,
            None => http_endpoint,
        };
        Ok(location)
    }
}

/// The URL again, in the form [`S3Location::parse`] reads: safe to log.
impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut query = Vec::new();
        if let Some(e) = &self.endpoint {
            query.push(("endpoint", e.as_str()));
        }
        if let Some(r) = &self.region {
            query.push(("region", r.as_str()));
        }
        if let Some(p) = &self.prefix {
            query.push(("prefix", p.as_str()));
        }
        let http_endpoint = self
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        if self.allow_http && !http_endpoint {
            query.push(("allow_http", "true"));
        }
        // Every value was checked to hold no `&`, `=`, `%` or `+`: written as is, it reads back.
        write!(f, "s3://{}", self.bucket)?;
        for (i, (key, value)) in query.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{key}={value}")?;
        }
        Ok(())
    }
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::Invalid {
        what: WHAT,
        reason: reason.into(),
    }
}

/// Lenient on purpose: S3-compatible servers accept more than AWS's 3–63 lowercase rule.
fn check_bucket(bucket: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if bucket.is_empty() || bucket.len() > 255 || !bucket.chars().all(ok_char) {
        return Err(invalid(format!(
            "{bucket:?} is not a bucket name (letters, digits, . - _)"
        )));
    }
    Ok(())
}

fn check_endpoint(endpoint: &str) -> Result<String> {
    let host = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .ok_or_else(|| invalid("endpoint must start with http:// or https://"))?;
    let host = host.trim_end_matches('/');
    let ok_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']');
    if host.is_empty() || !host.chars().all(ok_char) {
        return Err(invalid(
            "endpoint must be http(s)://HOST[:PORT], without a path, query or user-info",
        ));
    }
    Ok(endpoint.trim_end_matches('/').to_owned())
}

fn check_region(region: &str) -> Result<String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
    if region.is_empty() || region.len() > 64 || !region.chars().all(ok_char) {
        return Err(invalid(format!("{region:?} is not a region")));
    }
    Ok(region.to_owned())
}

/// The same alphabet as a `BlobKey`, so a prefixed key is still a plain, safe object name.
fn check_prefix(prefix: &str) -> Result<Option<String>> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(None);
    }
    let ok_char = |c: char| matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-');
    let valid = trimmed.len() <= 200
        && trimmed
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && seg.chars().all(ok_char));
    if !valid {
        return Err(invalid(format!(
            "{prefix:?} is not a prefix (segments of a-z 0-9 . _ - separated by /)"
        )));
    }
    Ok(Some(trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, expected: &S3Location) {
        let parsed = S3Location::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(&parsed, expected, "{url}");
        let again = S3Location::parse(&parsed.to_string()).unwrap();
        assert_eq!(&again, expected, "Display of {url} reads back");
    }

    fn bucket(name: &str) -> S3Location {
        S3Location {
            bucket: name.into(),
            endpoint: None,
            region: None,
            prefix: None,
            allow_http: false,
        }
    }

    #[test]
    fn spec_form() {
        check(
            "s3://thumbs?endpoint=http://127.0.0.1:9000&region=us-east-1",
            &S3Location {
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: Some("us-east-1".into()),
                allow_http: true,
                ..bucket("thumbs")
            },
        );
    }

    #[test]
    fn other_forms() {
        check("s3://thumbs", &bucket("thumbs"));
        check("s3://thumbs/", &bucket("thumbs"));
        check(
            "s3://my.bucket?region=eu-west-3&prefix=/tenant/one/",
            &S3Location {
                region: Some("eu-west-3".into()),
                prefix: Some("tenant/one".into()),
                ..bucket("my.bucket")
            },
        );
        check(
            "s3://b?endpoint=https%3A%2F%2Fs3.example.com%2F&allow_http=true",
            &S3Location {
                endpoint: Some("https://s3.example.com".into()),
                allow_http: true,
                ..bucket("b")
            },
        );
        check(
            "s3://b?endpoint=https://minio.internal:9000&allow_http=false",
            &S3Location {
                endpoint: Some("https://minio.internal:9000".into()),
                ..bucket("b")
            },
        );
    }

    #[test]
    fn refused() {
        for (url, says) in [
            ("file:///tmp", "expected s3://"),
            ("s3://", "not a bucket name"),
            ("s3://?region=x", "not a bucket name"),
            ("s3://b/some/path", "use ?prefix="),
            ("s3://AKIA:hunter2@b", "credentials do not belong"),
            ("s3://b?endpoint=ftp://x", "http:// or https://"),
            ("s3://b?endpoint=http://x/path", "without a path"),
            ("s3://b?endpoint=http://", "HOST"),
            ("s3://b?region=", "not a region"),
            ("s3://b?prefix=A/B", "not a prefix"),
            ("s3://b?prefix=a/../b", "not a prefix"),
            ("s3://b?allow_http=yes", "true or false"),
            ("s3://b?endpoint=http://x&allow_http=false", "contradicts"),
            ("s3://b?region=a&region=b", "twice"),
            ("s3://b?secret=x", "unknown parameter"),
        ] {
            let err = S3Location::parse(url).expect_err(url).to_string();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{url}: {err}");
        }
    }
}
