//! Finding the external services (RabbitMQ, PostgreSQL) that backend tests run against.
//!
//! Tests read the service URL from an environment variable, defaulting to the local
//! instance. If nothing answers there, the test prints a loud `SKIP` and returns — unless
//! `THUMBD_REQUIRE_SERVICES=1` (set by `.ci/run`), in which case it fails.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::time::Duration;

use crate::redact;

/// The URL of a service for tests: `$var`, else `default`; `None` (after printing SKIP) if
/// nothing accepts a TCP connection at its host and port and services are not required.
///
/// # Panics
/// If the service is unreachable and `THUMBD_REQUIRE_SERVICES=1`.
pub fn service_url(var: &str, default: &str, test: &str) -> Option<String> {
    let url = std::env::var(var).unwrap_or_else(|_| default.to_owned());
    match reachable(&url) {
        Ok(()) => Some(url),
        Err(why) => {
            let required = std::env::var("THUMBD_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
            let shown = redact(&url);
            assert!(
                !required,
                "{test}: {shown} ({var}) is unreachable ({why}) and THUMBD_REQUIRE_SERVICES=1"
            );
            eprintln!(
                "\n==== SKIP {test}: {shown} ({var}) is unreachable: {why}. \
                 Start the service or set {var}. ====\n"
            );
            None
        }
    }
}

/// Connects to the URL's host and port (default ports: amqp 5672, postgres 5432).
fn reachable(url: &str) -> Result<(), String> {
    let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default_port = match scheme {
        "amqp" => 5672,
        "amqps" => 5671,
        "postgres" | "postgresql" => 5432,
        _ => return Err(format!("unknown scheme {scheme}")),
    };
    let with_port = if host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    let addrs: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .collect();
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_is_an_error() {
        // Port 1 on loopback: nothing listens there.
        assert!(reachable("amqp://guest:guest@127.0.0.1:1/%2f").is_err());
        assert!(reachable("ftp://x").is_err());
    }
}
