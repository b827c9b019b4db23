//! Webhooks end to end with the real binary: the README's Python receiver verifies what
//! `thumbd serve` sends; a delivery in flight when `serve` is killed, or when a distributed
//! worker is killed, is delivered after all, once recorded.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/images.rs"]
mod images;
#[path = "support/serve_process.rs"]
mod serve_process;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{Cluster, agent};
use images::png;
use serde_json::Value;

/// A receiver on loopback, one request per connection: the first `hold` requests get no
/// answer (the connection stays open, as an endpoint that is still thinking), the others 200.
/// Records each request's `webhook-id`.
struct Receiver {
    url: String,
    ids: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start(hold: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        let ids: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = ids.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let Some(id) = read_request(&stream) else {
                        return;
                    };
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        seen.push(id);
                        seen.len()
                    };
                    if n <= hold {
                        std::thread::sleep(Duration::from_secs(120));
                        return;
                    }
                    let _ = (&stream).write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                });
            }
        });
        Receiver { url, ids }
    }

    /// Waits until `n` requests came; returns their `webhook-id`s.
    fn wait_for(&self, n: usize, within: Duration, log: impl Fn() -> String) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let ids = self.ids.lock().unwrap().clone();
            if ids.len() >= n {
                return ids;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests came:\n{}",
                ids.len(),
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Reads one request; returns its `webhook-id` header.
fn read_request(stream: &TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let (mut id, mut length) = (None, 0usize);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.to_ascii_lowercase().as_str() {
                "webhook-id" => id = Some(value.trim().to_owned()),
                "content-length" => length = value.trim().parse().ok()?,
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    id
}

fn put_webhook(base: &str, auth: &str, id: &str, body: &Value) -> Value {
    let mut r = agent()
        .put(format!("{base}/v1/webhooks/{id}?environment=development"))
        .header("authorization", auth)
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap();
    let status = r.status().as_u16();
    let answer: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(status, 201, "{answer}");
    answer
}

fn get_json(url: &str, auth: &str) -> Value {
    let mut r = agent()
        .get(url)
        .header("authorization", auth)
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{url}");
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

/// Creates thumbnail `id` and waits for it (201).
fn create(base: &str, auth: &str, id: &str) -> Value {
    let mut r = agent()
        .put(format!("{base}/v1/thumbnails/{id}?environment=development"))
        .header("authorization", auth)
        .header("content-type", "image/png")
        .header("prefer", "wait=10")
        .send(png(400, 300, 3))
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

struct Serve {
    child: Child,
    base: String,
    auth: String,
    log: std::path::PathBuf,
}

impl Serve {
    fn start(data: &std::path::Path, envs: &[(&str, &str)]) -> Serve {
        let log = data.with_extension("log");
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let p = serve_process::spawn_env(data, &[], envs, "info,sqlx=warn", Stdio::from(file));
        Serve {
            child: p.child,
            base: p.base,
            auth: format!("Bearer {}", p.token),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ENV: &[(&str, &str)] = &[
    ("THUMBD_ALLOW_PRIVATE_WEBHOOKS", "true"),
    ("THUMBD_WEBHOOK_RETRY_SCHEDULE", "1,2,4"),
];

/// The README's receiver, run as written with the `standardwebhooks` package, accepts what
/// thumbd sends, and refuses a forgery (so it does check).
#[test]
fn the_readme_python_receiver_verifies_what_serve_sends() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let code = readme
        .split("### Webhooks")
        .nth(1)
        .and_then(|s| s.split("```python\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("README: a python block under Webhooks");
    let has_package = Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_package,
        "python3 with standardwebhooks is needed (pip install standardwebhooks)"
    );
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut python = Command::new("python3")
        .args(["-c", code])
        .env("WEBHOOK_SECRET", secret)
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(python.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let port = first.rsplit(' ').next().unwrap().to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(&dir.path().join("data"), ENV);
    let url = format!("http://127.0.0.1:{port}/");
    put_webhook(
        &serve.base,
        &serve.auth,
        "python",
        &serde_json::json!({ "url": url, "events": ["job.succeeded"], "secret": secret }),
    );
    let job = create(&serve.base, &serve.auth, "cover");
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("the receiver printed nothing:\n{}", serve.log()));
    let (kind, id) = line.split_once(' ').unwrap();
    assert_eq!(kind, "job.succeeded");
    assert!(
        id.contains(&job["id"].as_str().unwrap().replace('-', "")),
        "{line}"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let deliveries = loop {
        let d = get_json(
            &format!(
                "{}/v1/webhooks/python/deliveries?environment=development",
                serve.base
            ),
            &serve.auth,
        );
        if !d["items"].as_array().unwrap().is_empty() || Instant::now() > deadline {
            break d;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(deliveries["items"][0]["status"], 204, "{deliveries}");
    assert_eq!(deliveries["items"][0]["eventId"], id);

    // A forgery (the body changed after signing) is refused by the receiver.
    let forged = agent()
        .post(&url)
        .header("webhook-id", id)
        .header(
            "webhook-timestamp",
            &format!(
                "{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
            ),
        )
        .header(
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        )
        .send("{\"type\":\"job.succeeded\"}")
        .unwrap();
    assert_eq!(forged.status().as_u16(), 400);
    let _ = python.kill();
    let _ = python.wait();
}

/// `serve` is killed (SIGKILL) while an endpoint has not yet answered a delivery: after the
/// restart the same event (same `webhook-id`) is delivered, and recorded once.
#[test]
fn a_delivery_in_flight_when_serve_is_killed_is_delivered_after_restart() {
    let receiver = Receiver::start(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serve = Serve::start(&data, ENV);
    put_webhook(
        &serve.base,
        &serve.auth,
        "held",
        &serde_json::json!({ "url": receiver.url, "events": ["job.succeeded"] }),
    );
    create(&serve.base, &serve.auth, "cover");
    let first = receiver.wait_for(1, Duration::from_secs(30), || serve.log());
    let mut serve = serve;
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    drop(serve);

    let serve = Serve::start(&data, ENV);
    let ids = receiver.wait_for(2, Duration::from_secs(30), || serve.log());
    assert_eq!(ids[1], first[0], "the same event, delivered again");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = get_json(
            &format!(
                "{}/v1/webhooks/held/deliveries?environment=development",
                serve.base
            ),
            &serve.auth,
        );
        let items = d["items"].as_array().unwrap();
        if !items.is_empty() {
            assert_eq!(items.len(), 1, "the killed attempt was never recorded: {d}");
            assert_eq!(items[0]["status"], 200);
            assert_eq!(items[0]["attempt"], 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no attempt recorded:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.ids.lock().unwrap().len(), 2, "nothing more");
}

/// Distributed: a worker killed (SIGKILL) while an endpoint has not answered; RabbitMQ hands
/// the delivery to another worker, which delivers it.
#[test]
fn a_delivery_in_flight_when_a_worker_is_killed_is_delivered_by_another() {
    let Some(mut c) = Cluster::new("webhooks") else {
        return;
    };
    for (k, v) in ENV {
        c.env.push(((*k).into(), (*v).into()));
    }
    let receiver = Receiver::start(1);
    c.start_api();
    c.start_worker();
    let auth = format!("Bearer {}", c.token);
    put_webhook(
        c.api(),
        &auth,
        "held",
        &serde_json::json!({ "url": receiver.url, "events": ["job.succeeded"] }),
    );
    let job = c.submit("cover", &png(400, 300, 4));
    c.wait_all(&[job], Duration::from_secs(60));
    let first = receiver.wait_for(1, Duration::from_secs(30), || c.logs());
    let mut killed = c.workers.remove(0);
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    c.start_worker();
    let ids = receiver.wait_for(2, Duration::from_secs(60), || c.logs());
    assert_eq!(ids[1], first[0]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = get_json(
            &format!(
                "{}/v1/webhooks/held/deliveries?environment=development",
                c.api()
            ),
            &auth,
        );
        if let Some(a) = d["items"].as_array().unwrap().first() {
            assert_eq!(a["status"], 200, "{d}");
            assert_eq!(d["items"].as_array().unwrap().len(), 1, "{d}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no attempt recorded:\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.sigterm_all();
}
