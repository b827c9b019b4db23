//! `Fetcher`: one guarded HTTP client, and the body read under a limit.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use reqwest::redirect::{Attempt, Policy};
use reqwest::{StatusCode, Url};

use crate::error::FetchError;
use crate::guard::{Guard, GuardedResolver, NameNotResolved, Refused};
use crate::options::FetchOptions;

/// Downloads URL sources: http(s) only, through the SSRF guard, under a size and a time
/// limit. Cheap to clone (the connection pool is shared); build one per process.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    guard: Arc<Guard>,
    options: FetchOptions,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The redirect cap was reached (carried through reqwest's error).
#[derive(Debug)]
struct TooManyRedirects;

impl fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("too many redirects")
    }
}

impl StdError for TooManyRedirects {}

impl Fetcher {
    /// A fetcher with `options`. Installs rustls's *ring* provider as the process default
    /// if none is installed yet, and loads the system's root certificates.
    ///
    /// Never fails: without any system root certificate (no `ca-certificates` package,
    /// no `SSL_CERT_FILE`) it logs an error and every https fetch fails with
    /// `SourceFetchFailed`, while http keeps working.
    pub fn new(options: FetchOptions) -> Fetcher {
        // Err means another provider is already the default, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let guard = Arc::new(Guard::new(&options));
        let client = client(&options, &guard).build().unwrap_or_else(|e| {
            tracing::error!(
                error = %e,
                "no TLS root certificates (install ca-certificates or set SSL_CERT_FILE): \
                 https URL sources will fail"
            );
            client(&options, &guard)
                .tls_certs_only([])
                .build()
                .expect("a client without roots builds")
        });
        Fetcher {
            client,
            guard,
            options,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &FetchOptions {
        &self.options
    }

    /// The body of `url` after at most `max_redirects` redirects, if every URL and every
    /// address on the way is allowed, the final status is 2xx and the body fits in
    /// `max_bytes`; within `timeout` overall.
    ///
    /// # Errors
    /// A [`FetchError`] with its stable code; see its variants.
    pub async fn fetch(&self, url: &str) -> Result<Bytes, FetchError> {
        let url = Url::parse(url).map_err(|e| {
            FetchError::failed("the source URL is not valid", false, Some(e.into()))
        })?;
        self.guard
            .check_url(&url)
            .map_err(|Refused(why)| FetchError::NotAllowed(why))?;
        let timeout = self.options.timeout;
        tokio::time::timeout(timeout, self.get(url))
            .await
            .unwrap_or_else(|_| {
                Err(FetchError::failed(
                    format!("the source did not answer within {timeout:?}"),
                    true,
                    None,
                ))
            })
    }

    /// Posts `body` with `headers` to `url` through the same guard and within `timeout`,
    /// and returns the final status, whatever it is (the response body is not read).
    /// Redirects are followed like a fetch's, up to `max_redirects` (webhook deliveries use
    /// 0: a redirect is an error).
    ///
    /// # Errors
    /// `SourceNotAllowed` for a refused URL or address; `SourceFetchFailed` when no answer
    /// came.
    pub async fn post(
        &self,
        url: &str,
        headers: reqwest::header::HeaderMap,
        body: Bytes,
    ) -> Result<StatusCode, FetchError> {
        let url = Url::parse(url)
            .map_err(|e| FetchError::failed("the URL is not valid", false, Some(e.into())))?;
        self.guard
            .check_url(&url)
            .map_err(|Refused(why)| FetchError::NotAllowed(why))?;
        let timeout = self.options.timeout;
        let send = self.client.post(url).headers(headers).body(body).send();
        match tokio::time::timeout(timeout, send).await {
            Err(_) => Err(FetchError::failed(
                format!("no answer within {timeout:?}"),
                true,
                None,
            )),
            Ok(Err(e)) => Err(self.failure(e)),
            Ok(Ok(response)) => Ok(response.status()),
        }
    }

    async fn get(&self, url: Url) -> Result<Bytes, FetchError> {
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| self.failure(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_failure(status));
        }
        let limit = self.options.max_bytes;
        let too_large = || FetchError::TooLarge { limit };
        let declared = response.content_length();
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(too_large());
        }
        let capacity = declared.map_or(0, |len| usize::try_from(len).unwrap_or(limit));
        let mut body = Vec::with_capacity(capacity.min(limit));
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failure(e))? {
            if chunk.len() > limit - body.len() {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    /// Sorts a reqwest error into the codes, recovering the guard's refusals.
    fn failure(&self, e: reqwest::Error) -> FetchError {
        if let Some(Refused(why)) = find::<Refused>(&e) {
            return FetchError::NotAllowed(why);
        }
        let (message, transient) = if find::<TooManyRedirects>(&e).is_some() {
            (
                format!(
                    "the source redirected more than {} times",
                    self.options.max_redirects
                ),
                false,
            )
        } else if find::<NameNotResolved>(&e).is_some() {
            ("the source's host name could not be resolved".into(), true)
        } else if e.is_timeout() {
            (
                format!(
                    "the source could not be reached within {:?}",
                    self.options.connect_timeout
                ),
                true,
            )
        } else if find::<rustls::Error>(&e).is_some() {
            // A refused certificate does not heal in the minutes retries take.
            (
                "no secure connection to the source could be made".into(),
                false,
            )
        } else if e.is_connect() {
            ("the source could not be reached".into(), true)
        } else if e.is_body() || e.is_decode() {
            ("the source's response was cut short".into(), true)
        } else if e.is_redirect() {
            ("the source's redirect could not be followed".into(), false)
        } else {
            ("the source could not be fetched".into(), true)
        };
        FetchError::failed(message, transient, Some(e.into()))
    }
}

/// Checks a URL the way [`Fetcher::fetch`] would before connecting: scheme, credentials, a
/// literal address, and every address its host name resolves to now (a fetch checks them
/// again when it connects). For URLs stored to be used later, such as webhook endpoints.
///
/// # Errors
/// `SourceNotAllowed` with the reason; `SourceFetchFailed` if the URL does not parse or its
/// name does not resolve.
pub async fn check_destination(url: &str, options: &FetchOptions) -> Result<(), FetchError> {
    let url = Url::parse(url)
        .map_err(|e| FetchError::failed("the URL is not valid", false, Some(e.into())))?;
    let guard = Guard::new(options);
    guard
        .check_url(&url)
        .map_err(|Refused(why)| FetchError::NotAllowed(why))?;
    // A literal address was checked with the URL.
    let name = url.host_str().unwrap_or_default();
    if name.starts_with('[') || name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|e| {
            FetchError::failed("the host name could not be resolved", true, Some(e.into()))
        })?
        .collect();
    guard
        .check_resolved(&addrs)
        .map_err(|Refused(why)| FetchError::NotAllowed(why))
}

fn client(options: &FetchOptions, guard: &Arc<Guard>) -> reqwest::ClientBuilder {
    let max_redirects = options.max_redirects;
    let hop_guard = guard.clone();
    reqwest::Client::builder()
        // Proxy variables would send every fetch past the guard.
        .no_proxy()
        .user_agent(options.user_agent.clone())
        .connect_timeout(options.connect_timeout)
        .referer(false)
        .dns_resolver(GuardedResolver(guard.clone()))
        .redirect(Policy::custom(move |attempt: Attempt| {
            // `previous` holds the first URL and every hop followed so far.
            if attempt.previous().len() > max_redirects {
                return attempt.error(TooManyRedirects);
            }
            // Names are checked when the hop connects (through the resolver); literal IPs
            // never reach the resolver, so the URL is checked here.
            match hop_guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        }))
}

/// `SourceFetchFailed` for a final status other than 2xx.
fn status_failure(status: StatusCode) -> FetchError {
    let transient = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    FetchError::failed(format!("the source answered {status}"), transient, None)
}

/// The first `T` in `e`'s chain of sources, looking inside `io::Error`s too (whose
/// `source` skips the error they wrap).
fn find<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(found) = find::<T>(inner)
        {
            return Some(found);
        }
        next = e.source();
    }
    None
}
