//! Signed URLs: a thumbnail URL that answers without a token until it expires, so a CDN or
//! an `<img>` tag can fetch it (README, "Signed URLs").
//!
//! `sig` is the unpadded base64url HMAC-SHA256, under `url_signing_key`, of the path and
//! the query before `&sig=` (`expires` included, in unix seconds). The tenant is part of the
//! signed query (`tenant=`) when it is not `default`, since no token says whose it is.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha256;
use thumbd_codes::Code;
use thumbd_jobs::Tenant;

use crate::error::ApiError;

/// Signs and checks thumbnail URLs.
#[derive(Clone)]
pub struct UrlSigner {
    key: SecretString,
    ttl: Duration,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlSigner")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl UrlSigner {
    /// A signer with `key`; signed URLs are valid for `ttl`.
    pub fn new(key: SecretString, ttl: Duration) -> Self {
        UrlSigner { key, ttl }
    }

    fn mac(&self, message: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(message.as_bytes());
        mac
    }

    /// `url` (a path with its query) of `tenant`'s thumbnail, signed to expire `ttl` after
    /// `now` (unix seconds).
    pub fn sign(&self, url: &str, tenant: &Tenant, now: u64) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        let tenant = if *tenant == Tenant::default() {
            String::new()
        } else {
            format!("tenant={tenant}&")
        };
        let unsigned = format!("{url}{sep}{tenant}expires={}", now + self.ttl.as_secs());
        let sig = URL_SAFE_NO_PAD.encode(self.mac(&unsigned).finalize().into_bytes());
        format!("{unsigned}&sig={sig}")
    }

    /// Checks the signature of a request for `path` with raw `query` (which ends in
    /// `&sig=…`); returns the tenant it was signed for. 403 `InvalidSignature` when it does
    /// not match or has expired.
    pub fn verify(&self, path: &str, query: &str, now: u64) -> Result<Tenant, ApiError> {
        let invalid = |why: &str| ApiError::new(Code::InvalidSignature, why.to_owned());
        let (signed, sig) = query
            .rsplit_once("&sig=")
            .ok_or_else(|| invalid("`sig` must be the last parameter of a signed URL"))?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| invalid("`sig` is not base64url"))?;
        self.mac(&format!("{path}?{signed}"))
            .verify_slice(&sig)
            .map_err(|_| invalid("the signature does not match this URL"))?;
        let params: Vec<(String, String)> = serde_urlencoded::from_str(signed)
            .map_err(|_| invalid("the signed query is malformed"))?;
        let value = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let expires: u64 = value("expires")
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| invalid("a signed URL carries `expires`"))?;
        if expires < now {
            return Err(invalid("the signed URL has expired"));
        }
        match value("tenant") {
            None => Ok(Tenant::default()),
            Some(t) => Tenant::parse(t).map_err(|_| invalid("the signed tenant is not valid")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> UrlSigner {
        UrlSigner::new(
            SecretString::from("k".repeat(32)),
            Duration::from_secs(3600),
        )
    }

    fn split(url: &str) -> (&str, &str) {
        url.split_once('?').unwrap()
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let url = signer().sign(
            "/v1/thumbnails/a%2Fb?environment=production",
            &Tenant::default(),
            1000,
        );
        assert!(url.starts_with("/v1/thumbnails/a%2Fb?environment=production&expires=4600&sig="));
        let (path, query) = split(&url);
        assert_eq!(
            signer().verify(path, query, 4600).unwrap(),
            Tenant::default()
        );
        let late = signer().verify(path, query, 4601).unwrap_err();
        assert_eq!(late.code(), Code::InvalidSignature);
    }

    #[test]
    fn anything_changed_breaks_it() {
        let acme = Tenant::parse("acme").unwrap();
        let url = signer().sign("/v1/thumbnails/x?environment=production", &acme, 1000);
        let (path, query) = split(&url);
        assert_eq!(signer().verify(path, query, 1000).unwrap(), acme);
        for (p, q) in [
            ("/v1/thumbnails/y", query.to_owned()),
            (path, query.replace("production", "development")),
            (path, query.replace("tenant=acme", "tenant=globex")),
            (path, query.replace("expires=4600", "expires=9999")),
            (path, format!("{query}&extra=1")),
            (path, query.replace("&sig=", "&sig=A")),
        ] {
            let e = signer().verify(p, &q, 1000).unwrap_err();
            assert_eq!(e.code(), Code::InvalidSignature, "{p}?{q}");
        }
        let other = UrlSigner::new(SecretString::from("o".repeat(32)), Duration::from_secs(1));
        assert!(other.verify(path, query, 1000).is_err());
    }
}
