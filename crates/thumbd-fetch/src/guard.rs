//! `Guard`: the SSRF checks. Every URL (the first and each redirect's) passes
//! [`Guard::check_url`]; every host name is resolved by [`GuardedResolver`], which refuses
//! the name when any of its addresses is refused.
//!
//! Both are needed: hyper connects to a literal IP host without asking the resolver, and a
//! name is only known to be safe once its addresses are, at connect time, for every hop.
//! The addresses checked are the ones connected to, so a name cannot change its answer
//! between the check and the connection (DNS rebinding).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::address::refused_range;
use crate::options::FetchOptions;

/// What a fetch may reach.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    allow_private: bool,
    allow_addresses: Vec<IpAddr>,
}

/// A refusal, carried through reqwest's errors from the resolver or the redirect policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused(pub &'static str);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Refused {}

/// A host name that did not resolve, told apart from a failed connection.
#[derive(Debug)]
pub(crate) struct NameNotResolved(std::io::Error);

impl fmt::Display for NameNotResolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "name not resolved: {}", self.0)
    }
}

impl std::error::Error for NameNotResolved {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

const SCHEME: Refused = Refused("only http and https sources are allowed");
const CREDENTIALS: Refused = Refused("source URLs may not contain credentials");
const ADDRESS: Refused = Refused("the source's address is not allowed");
const LOCAL_NAME: Refused = Refused("the source's host name is not allowed");
const RESOLVED: Refused =
    Refused("the source's host name resolves to an address that is not allowed");

impl Guard {
    pub(crate) fn new(options: &FetchOptions) -> Self {
        Guard {
            allow_private: options.allow_private,
            allow_addresses: options.allow_addresses.clone(),
        }
    }

    /// Whether a connection to `ip` is allowed.
    pub(crate) fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || self.allow_addresses.contains(&ip) || refused_range(ip).is_none()
    }

    /// The checks that need no name resolution: scheme, credentials, a literal IP host,
    /// `localhost` names (RFC 6761: they never leave the machine, and are refused before a
    /// lookup that might ask a DNS server about them).
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SCHEME);
        }
        // `http://user@host/` is a classic way to make a URL read as another host; and
        // credentials would end up in job records and logs.
        if !url.username().is_empty() || url.password().is_some() {
            return Err(CREDENTIALS);
        }
        let Some(host) = url.host_str() else {
            return Err(SCHEME);
        };
        // The url crate has already turned `2130706433`, `0x7f.1`, `127.1`… into 127.0.0.1
        // and `[::ffff:127.0.0.1]` into `[::ffff:7f00:1]`: a host that does not parse as
        // an address here is a name.
        let literal = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<IpAddr>().ok(),
            None => host.parse::<IpAddr>().ok(),
        };
        match literal {
            Some(ip) if !self.allows(ip) => Err(ADDRESS),
            Some(_) => Ok(()),
            None if !self.allow_private && is_localhost(host) => Err(LOCAL_NAME),
            None => Ok(()),
        }
    }

    /// Refuses the whole answer when any address in it is refused: a name that resolves
    /// to a public and a private address could be connected to either.
    pub(crate) fn check_resolved(&self, addrs: &[SocketAddr]) -> Result<(), Refused> {
        if addrs.iter().all(|a| self.allows(a.ip())) {
            Ok(())
        } else {
            Err(RESOLVED)
        }
    }
}

/// `localhost`, `localhost.`, `img.localhost`… in any case.
fn is_localhost(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// reqwest's resolver: the system's (`getaddrinfo` through tokio), then the guard.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver(pub Arc<Guard>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(NameNotResolved)?
                .collect();
            if addrs.is_empty() {
                return Err(NameNotResolved(std::io::Error::other("no addresses")).into());
            }
            guard.check_resolved(&addrs)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allow_private: bool, allow: &[&str]) -> Guard {
        Guard::new(&FetchOptions {
            allow_private,
            allow_addresses: allow.iter().map(|a| a.parse().unwrap()).collect(),
            ..FetchOptions::default()
        })
    }

    /// Each URL as the url crate normalises it, and the guard's answer.
    fn check(guard: &Guard, table: &[(&str, &str, Result<(), Refused>)]) {
        let mut wrong = Vec::new();
        for &(text, normalised, expected) in table {
            let url = Url::parse(text).expect(text);
            let got = guard.check_url(&url);
            if url.as_str() != normalised || got != expected {
                wrong.push(format!(
                    "{text}: expected {normalised} {expected:?}, got {url} {got:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn urls_are_checked_after_normalisation() {
        let ok = Ok(());
        check(
            &guard(false, &[]),
            &[
                ("https://example.com/a.png", "https://example.com/a.png", ok),
                ("http://8.8.8.8:8080/x", "http://8.8.8.8:8080/x", ok),
                ("http://[2606:4700::1111]/", "http://[2606:4700::1111]/", ok),
                ("http://127.0.0.1/", "http://127.0.0.1/", Err(ADDRESS)),
                ("http://2130706433/", "http://127.0.0.1/", Err(ADDRESS)),
                ("http://0x7f.1/", "http://127.0.0.1/", Err(ADDRESS)),
                ("http://0177.0.0.1/", "http://127.0.0.1/", Err(ADDRESS)),
                ("http://127.1/", "http://127.0.0.1/", Err(ADDRESS)),
                ("http://0/", "http://0.0.0.0/", Err(ADDRESS)),
                (
                    "http://169.254.169.254/latest",
                    "http://169.254.169.254/latest",
                    Err(ADDRESS),
                ),
                (
                    "http://0xa9fea9fe/",
                    "http://169.254.169.254/",
                    Err(ADDRESS),
                ),
                ("http://[::1]:80/", "http://[::1]/", Err(ADDRESS)),
                ("http://[::]/", "http://[::]/", Err(ADDRESS)),
                (
                    "http://[::ffff:127.0.0.1]/",
                    "http://[::ffff:7f00:1]/",
                    Err(ADDRESS),
                ),
                (
                    "http://[::ffff:a9fe:a9fe]/",
                    "http://[::ffff:a9fe:a9fe]/",
                    Err(ADDRESS),
                ),
                (
                    "http://[64:ff9b::10.0.0.1]/",
                    "http://[64:ff9b::a00:1]/",
                    Err(ADDRESS),
                ),
                (
                    "http://[fd00:ec2::254]/",
                    "http://[fd00:ec2::254]/",
                    Err(ADDRESS),
                ),
                (
                    "http://LOCALHOST:8080/",
                    "http://localhost:8080/",
                    Err(LOCAL_NAME),
                ),
                ("http://localhost./", "http://localhost./", Err(LOCAL_NAME)),
                (
                    "http://a.b.localhost/",
                    "http://a.b.localhost/",
                    Err(LOCAL_NAME),
                ),
                (
                    "http://localhost.example.com/",
                    "http://localhost.example.com/",
                    ok,
                ),
                (
                    "http://evil.com@127.0.0.1/",
                    "http://evil.com@127.0.0.1/",
                    Err(CREDENTIALS),
                ),
                (
                    "http://user:pw@example.com/",
                    "http://user:pw@example.com/",
                    Err(CREDENTIALS),
                ),
                (
                    "ftp://example.com/a.png",
                    "ftp://example.com/a.png",
                    Err(SCHEME),
                ),
                ("file:///etc/passwd", "file:///etc/passwd", Err(SCHEME)),
                (
                    "gopher://127.0.0.1:6379/",
                    "gopher://127.0.0.1:6379/",
                    Err(SCHEME),
                ),
                (
                    "data:image/png;base64,AAAA",
                    "data:image/png;base64,AAAA",
                    Err(SCHEME),
                ),
            ],
        );
    }

    #[test]
    fn allow_private_and_allowed_addresses() {
        let ok = Ok(());
        check(
            &guard(true, &[]),
            &[
                ("http://127.0.0.1:9/", "http://127.0.0.1:9/", ok),
                ("http://localhost/", "http://localhost/", ok),
                ("http://[::1]/", "http://[::1]/", ok),
                ("ftp://127.0.0.1/", "ftp://127.0.0.1/", Err(SCHEME)),
                (
                    "http://u@127.0.0.1/",
                    "http://u@127.0.0.1/",
                    Err(CREDENTIALS),
                ),
            ],
        );
        check(
            &guard(false, &["127.0.0.2"]),
            &[
                ("http://127.0.0.2:9/", "http://127.0.0.2:9/", ok),
                ("http://127.0.0.1:9/", "http://127.0.0.1:9/", Err(ADDRESS)),
                ("http://localhost/", "http://localhost/", Err(LOCAL_NAME)),
            ],
        );
    }

    #[test]
    fn one_refused_address_refuses_the_name() {
        let addrs = |list: &[&str]| -> Vec<SocketAddr> {
            list.iter()
                .map(|a| SocketAddr::new(a.parse().unwrap(), 0))
                .collect()
        };
        let g = guard(false, &[]);
        assert_eq!(
            g.check_resolved(&addrs(&["8.8.8.8", "2606:4700::1111"])),
            Ok(())
        );
        for bad in [
            &["8.8.8.8", "10.0.0.1"][..],
            &["127.0.0.1"],
            &["2606:4700::1111", "::1"],
            &["1.1.1.1", "::ffff:192.168.0.1"],
        ] {
            assert_eq!(g.check_resolved(&addrs(bad)), Err(RESOLVED), "{bad:?}");
        }
        assert_eq!(
            guard(true, &[]).check_resolved(&addrs(&["10.0.0.1"])),
            Ok(())
        );
        let some = guard(false, &["10.0.0.1"]);
        assert_eq!(
            some.check_resolved(&addrs(&["10.0.0.1", "8.8.8.8"])),
            Ok(())
        );
        assert_eq!(
            some.check_resolved(&addrs(&["10.0.0.1", "10.0.0.2"])),
            Err(RESOLVED)
        );
    }
}
