//! A small HTTP/1.1 server on a loopback address, with one route per behaviour the fetcher
//! must handle. Plain tokio, so the tests control every byte (cut bodies, stalls).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Bytes served at `/image.png` (fetching does not look at them).
pub const IMAGE: &[u8] = b"\x89PNG\r\n\x1a\n-- pretend this is a picture --";

/// A running server; it stops with the test's runtime.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Server {
    /// Listens on `ip`, port chosen by the OS.
    ///
    /// Routes: `/image.png`; `/redirect/N` (N ≥ 1 redirects, then the image); `/to?URL` (a redirect
    /// to URL); `/bytes/N` (N bytes with `Content-Length`); `/chunked/N` (N bytes chunked,
    /// no length; `forever` never ends); `/declared/N` (says N bytes, then stalls); `/slow`
    /// (one byte of 100 every 100 ms); `/cut` (says 1000 bytes, sends 10, closes);
    /// `/status/CODE`.
    pub async fn start(ip: &str) -> Server {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let _ = serve(stream).await;
                });
            }
        });
        Server { addr, connections }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    let target = read_request_target(&mut stream).await?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let number = |s: &str| s.parse::<usize>().expect("a number in the path");
    match segments[..] {
        ["image.png"] => respond(&mut stream, "200 OK", "", IMAGE).await,
        ["redirect", "1"] => redirect(&mut stream, "/image.png").await,
        ["redirect", n] => redirect(&mut stream, &format!("/redirect/{}", number(n) - 1)).await,
        ["to"] => redirect(&mut stream, query).await,
        ["bytes", n] => respond(&mut stream, "200 OK", "", &vec![b'x'; number(n)]).await,
        ["chunked", n] => {
            let total = if n == "forever" {
                usize::MAX
            } else {
                number(n)
            };
            let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            stream.write_all(head.as_bytes()).await?;
            let mut sent = 0;
            while sent < total {
                let len = (total - sent).min(8192);
                let mut chunk = format!("{len:x}\r\n").into_bytes();
                chunk.extend(std::iter::repeat_n(b'y', len));
                chunk.extend_from_slice(b"\r\n");
                stream.write_all(&chunk).await?; // fails once the client hangs up
                sent += len;
            }
            stream.write_all(b"0\r\n\r\n").await
        }
        ["declared", n] => {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        }
        ["slow"] => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
            stream.write_all(head.as_bytes()).await?;
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                stream.write_all(b"s").await?;
            }
            Ok(())
        }
        ["cut"] => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789";
            stream.write_all(head.as_bytes()).await
        }
        ["status", code] => {
            let status = format!("{code} Whatever");
            respond(&mut stream, &status, "", b"no image here").await
        }
        _ => respond(&mut stream, "404 Not Found", "", b"unknown route").await,
    }
}

/// Reads the request head and returns its target (`/path?query`).
async fn read_request_target(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 16 * 1024 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
        if head[0] == 0x16 {
            // A TLS ClientHello: answer in plain HTTP, as web servers do.
            stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                .await?;
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    Ok(target.to_owned())
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await
}

async fn redirect(stream: &mut TcpStream, location: &str) -> std::io::Result<()> {
    let location = format!("Location: {location}\r\n");
    respond(stream, "302 Found", &location, b"").await
}
