//! `FetchOptions`: what a [`Fetcher`](crate::Fetcher) may reach, how much and how long.

use std::net::IpAddr;
use std::time::Duration;

/// How a [`Fetcher`](crate::Fetcher) behaves. `Default` is the safe setting for production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Let sources reach loopback, private, link-local and other non-public addresses
    /// (see [`refused_range`](crate::refused_range)). For tests and closed networks
    /// (`THUMBD_ALLOW_PRIVATE_SOURCES`). Default `false`.
    pub allow_private: bool,
    /// Non-public addresses allowed all the same, one by one (an internal image server);
    /// every other refused address, and `localhost` names, stay refused. Tests use it to
    /// prove that a redirect from an allowed address to a refused one is checked again.
    /// Default empty.
    pub allow_addresses: Vec<IpAddr>,
    /// Largest body accepted, in bytes: decided from `Content-Length` before the body is
    /// read, and while streaming when there is none. Default 5 MiB, thumbcore's input limit.
    pub max_bytes: usize,
    /// The whole fetch: name resolution, connections, redirects and the body. Default 30 s.
    pub timeout: Duration,
    /// One TCP connection (a name resolution included). Default 5 s.
    pub connect_timeout: Duration,
    /// Redirects followed; one more fails the fetch. Default 5.
    pub max_redirects: usize,
    /// The `User-Agent` header. Default `thumbd/<version>`.
    pub user_agent: String,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            allow_private: false,
            allow_addresses: Vec::new(),
            max_bytes: 5 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_redirects: 5,
            user_agent: concat!("thumbd/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}
