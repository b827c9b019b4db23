//! The fetcher against a real HTTP server on loopback: the guard's refusals (with the server
//! proving it was never contacted), redirects, sizes, timeouts and statuses.
//!
//! No traffic leaves the machine: every name used is `localhost` (refused without a lookup)
//! or one that `/etc/hosts` maps to a loopback address.

mod support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use support::server::{IMAGE, Server};
use thumbd_fetch::{FetchError, FetchOptions, Fetcher};

const LIMIT: usize = 64 * 1024;

/// Options for the local server: private addresses allowed, small limits, short timeouts.
fn local() -> FetchOptions {
    FetchOptions {
        allow_private: true,
        max_bytes: LIMIT,
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        max_redirects: 3,
        ..FetchOptions::default()
    }
}

/// The production guard, with timeouts long enough that a refusal coming back at once
/// cannot be a connection attempt that gave up.
fn guarded() -> FetchOptions {
    FetchOptions {
        timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(10),
        ..FetchOptions::default()
    }
}

async fn fails(fetcher: &Fetcher, url: &str) -> FetchError {
    match fetcher.fetch(url).await {
        Ok(body) => panic!("{url}: fetched {} bytes", body.len()),
        Err(e) => e,
    }
}

fn assert_code(e: &FetchError, code: &str, transient: bool, url: &str) {
    assert_eq!(
        (e.code().as_str(), e.is_transient()),
        (code, transient),
        "{url}: {e} ({e:?})"
    );
}

/// Names `/etc/hosts` maps to loopback addresses, other than `localhost` ones (which the
/// guard refuses by name): they exercise the check on resolved addresses.
fn loopback_names_in_etc_hosts() -> Vec<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut names = Vec::new();
    for line in hosts.lines() {
        let mut fields = line.split('#').next().unwrap_or("").split_whitespace();
        let Some(Ok(ip)) = fields.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if ip.is_loopback() && ip != IpAddr::from([127, 0, 0, 2]) {
            names.extend(
                fields
                    .filter(|n| {
                        !n.to_ascii_lowercase()
                            .trim_end_matches('.')
                            .ends_with("localhost")
                    })
                    .map(str::to_owned),
            );
        }
    }
    assert!(
        !names.is_empty(),
        "these tests need a name other than localhost mapped to a loopback address in \
         /etc/hosts (Debian maps the host name to 127.0.1.1)"
    );
    names
}

#[tokio::test]
async fn allowed_private_sources_are_fetched_by_address_and_by_name() {
    let server = Server::start("127.0.0.1").await;
    let fetcher = Fetcher::new(local());
    assert_eq!(
        fetcher.fetch(&server.url("/image.png")).await.unwrap(),
        IMAGE
    );
    let by_name = format!("http://localhost:{}/image.png", server.addr.port());
    assert_eq!(fetcher.fetch(&by_name).await.unwrap(), IMAGE);
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn every_form_of_a_loopback_address_is_refused() {
    let server = Server::start("127.0.0.1").await;
    let port = server.addr.port();
    let fetcher = Fetcher::new(guarded());
    let mut urls: Vec<String> = [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "0177.0.0.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[64:ff9b::127.0.0.1]",
        "localhost",
        "localhost.",
        "LocalHost",
        "img.localhost",
    ]
    .iter()
    .map(|host| format!("http://{host}:{port}/image.png"))
    .collect();
    urls.push(server.url("/image.png").replace("http:", "https:"));
    for url in &urls {
        let e = fails(&fetcher, url).await;
        assert_code(&e, "SourceNotAllowed", false, url);
    }
    assert_eq!(server.connections(), 0, "the server was contacted");
}

#[tokio::test]
async fn names_resolving_to_loopback_are_refused_after_resolution() {
    let server = Server::start("127.0.0.1").await;
    let fetcher = Fetcher::new(guarded());
    for name in loopback_names_in_etc_hosts() {
        let url = format!("http://{name}:{}/image.png", server.addr.port());
        let e = fails(&fetcher, &url).await;
        assert_code(&e, "SourceNotAllowed", false, &url);
        assert!(e.to_string().contains("resolves to"), "{url}: {e}");
    }
    assert_eq!(server.connections(), 0, "the server was contacted");
}

#[tokio::test]
async fn metadata_and_unspecified_addresses_are_refused_before_any_connection() {
    let fetcher = Fetcher::new(guarded());
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://0xa9fea9fe/",
        "http://0.0.0.0:80/",
        "http://0/",
        "http://[::]/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
    ] {
        let started = Instant::now();
        let e = fails(&fetcher, url).await;
        assert_code(&e, "SourceNotAllowed", false, url);
        // A connection attempt would have taken up to connect_timeout (10 s) or failed
        // with SourceFetchFailed.
        assert!(started.elapsed() < Duration::from_millis(500), "{url}");
    }
}

#[tokio::test]
async fn schemes_other_than_http_and_credentials_are_refused() {
    let fetcher = Fetcher::new(local());
    for url in [
        "ftp://127.0.0.1/a.png",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "data:image/png;base64,iVBORw0KGgo=",
        "http://user:secret@127.0.0.1/a.png",
        "http://example.com@127.0.0.1/a.png",
    ] {
        assert_code(&fails(&fetcher, url).await, "SourceNotAllowed", false, url);
    }
    let e = fails(&fetcher, "not a url").await;
    assert_code(&e, "SourceFetchFailed", false, "not a url");
}

#[tokio::test]
async fn each_redirect_hop_is_checked_again() {
    // Only 127.0.0.2 is allowed: the origin listens there, the target on 127.0.0.1.
    let origin = Server::start("127.0.0.2").await;
    let target = Server::start("127.0.0.1").await;
    let fetcher = Fetcher::new(FetchOptions {
        allow_private: false,
        allow_addresses: vec![IpAddr::from([127, 0, 0, 2])],
        ..local()
    });

    // The guard lets the origin through, and a redirect that stays there.
    let home = origin.url("/image.png");
    assert_eq!(
        fetcher
            .fetch(&origin.url(&format!("/to?{home}")))
            .await
            .unwrap(),
        IMAGE
    );
    assert_eq!(
        fetcher.fetch(&origin.url("/redirect/2")).await.unwrap(),
        IMAGE
    );

    let port = target.addr.port();
    let mut hops: Vec<String> = ["127.0.0.1", "2130706433", "[::ffff:127.0.0.1]", "localhost"]
        .iter()
        .map(|host| format!("http://{host}:{port}/image.png"))
        .collect();
    // Names are checked when the hop resolves them.
    hops.extend(
        loopback_names_in_etc_hosts()
            .iter()
            .map(|name| format!("http://{name}:{port}/image.png")),
    );
    hops.push(format!("ftp://127.0.0.2:{}/image.png", origin.addr.port()));
    for hop in &hops {
        let url = origin.url(&format!("/to?{hop}"));
        assert_code(&fails(&fetcher, &url).await, "SourceNotAllowed", false, hop);
    }
    assert_eq!(target.connections(), 0, "the redirect target was contacted");
    assert_eq!(origin.connections(), 2 + 3 + hops.len());
}

#[tokio::test]
async fn redirects_are_followed_up_to_the_cap() {
    let server = Server::start("127.0.0.1").await;
    let fetcher = Fetcher::new(local()); // max_redirects: 3
    assert_eq!(
        fetcher.fetch(&server.url("/redirect/3")).await.unwrap(),
        IMAGE
    );
    let url = server.url("/redirect/4");
    let e = fails(&fetcher, &url).await;
    assert_code(&e, "SourceFetchFailed", false, &url);
    assert_eq!(e.to_string(), "the source redirected more than 3 times");
}

#[tokio::test]
async fn statuses_other_than_2xx_fail_transiently_when_worth_a_retry() {
    let server = Server::start("127.0.0.1").await;
    let fetcher = Fetcher::new(local());
    for (code, transient) in [
        (404, false),
        (403, false),
        (410, false),
        (500, true),
        (503, true),
        (429, true),
        (408, true),
    ] {
        let url = server.url(&format!("/status/{code}"));
        let e = fails(&fetcher, &url).await;
        assert_code(&e, "SourceFetchFailed", transient, &url);
        assert!(
            e.to_string()
                .starts_with(&format!("the source answered {code}")),
            "{e}"
        );
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_or_without_a_length() {
    let server = Server::start("127.0.0.1").await;
    let fetcher = Fetcher::new(local());
    for path in [format!("/bytes/{LIMIT}"), format!("/chunked/{LIMIT}")] {
        let body = fetcher.fetch(&server.url(&path)).await.unwrap();
        assert_eq!(body.len(), LIMIT, "{path}");
    }
    for path in [
        format!("/bytes/{}", LIMIT + 1),
        format!("/chunked/{}", LIMIT + 1),
        "/chunked/forever".to_owned(),
    ] {
        let e = fails(&fetcher, &server.url(&path)).await;
        assert_code(&e, "SourceTooLarge", false, &path);
        assert_eq!(
            e.to_string(),
            format!("the source is larger than the limit of {LIMIT} bytes")
        );
    }
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    let server = Server::start("127.0.0.1").await;
    let fetcher = Fetcher::new(FetchOptions {
        timeout: Duration::from_secs(10),
        ..local()
    });
    // The server sends the head, then nothing: only the header can decide in time.
    let started = Instant::now();
    let e = fails(&fetcher, &server.url("/declared/100000000")).await;
    assert_code(&e, "SourceTooLarge", false, "/declared");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_trickling_body_is_cut_off_by_the_timeout() {
    let server = Server::start("127.0.0.1").await;
    let fetcher = Fetcher::new(FetchOptions {
        timeout: Duration::from_millis(500),
        ..local()
    });
    let started = Instant::now();
    let e = fails(&fetcher, &server.url("/slow")).await;
    let elapsed = started.elapsed();
    assert_code(&e, "SourceFetchFailed", true, "/slow");
    assert_eq!(e.to_string(), "the source did not answer within 500ms");
    assert!(
        elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_body_cut_short_and_a_closed_port_are_transient() {
    let server = Server::start("127.0.0.1").await;
    let fetcher = Fetcher::new(local());
    let e = fails(&fetcher, &server.url("/cut")).await;
    assert_code(&e, "SourceFetchFailed", true, "/cut");
    assert_eq!(e.to_string(), "the source's response was cut short");

    // A port nobody listens on: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/image.png", closed.local_addr().unwrap());
    drop(closed);
    let e = fails(&fetcher, &url).await;
    assert_code(&e, "SourceFetchFailed", true, &url);
    assert_eq!(e.to_string(), "the source could not be reached");
}

#[tokio::test]
async fn https_goes_through_rustls() {
    // A plain-HTTP server answers the TLS ClientHello with garbage: the handshake fails
    // in rustls (so the client was built, with the ring provider and the root store).
    let server = Server::start("127.0.0.1").await;
    let fetcher = Fetcher::new(local());
    let url = server.url("/image.png").replace("http:", "https:");
    let e = fails(&fetcher, &url).await;
    assert_code(&e, "SourceFetchFailed", false, &url);
    assert_eq!(
        e.to_string(),
        "no secure connection to the source could be made"
    );
    assert_eq!(server.connections(), 1);
}
