//! `thumbd serve` as users run it: the real binary on a loopback port, real HTTP, real
//! SQLite and files, SIGKILL and SIGTERM.

#[path = "support/images.rs"]
mod images;
#[path = "support/serve_process.rs"]
mod serve_process;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use images::png;
use serde_json::Value;

/// A running `thumbd serve`.
struct Server {
    child: Child,
    base: String,
    token: String,
    data_dir: PathBuf,
}

impl Server {
    fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .unwrap();
        let p = serve_process::spawn(data_dir, extra, "info,sqlx=warn", Stdio::from(log));
        Server {
            child: p.child,
            base: p.base,
            token: p.token,
            data_dir: data_dir.to_owned(),
        }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    }

    /// POSTs an image with `Prefer: respond-async`; returns (status, body).
    fn submit(&self, agent: &ureq::Agent, id: &str, image: &[u8]) -> (u16, Value) {
        self.try_submit(agent, id, image, "respond-async")
            .expect("an answer")
    }

    /// POSTs an image with `Prefer: {prefer}`; (status, body), or `None` when no answer came
    /// (the connection failed).
    fn try_submit(
        &self,
        agent: &ureq::Agent,
        id: &str,
        image: &[u8],
        prefer: &str,
    ) -> Option<(u16, Value)> {
        let mut r = agent
            .post(format!(
                "{}/v1/thumbnails?thumbnailId={id}&environment=development",
                self.base
            ))
            .header("authorization", &format!("Bearer {}", self.token))
            .header("content-type", "image/png")
            .header("prefer", prefer)
            .send(image)
            .ok()?;
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().ok()?;
        Some((status, serde_json::from_str(&body).unwrap()))
    }

    /// The HTTP status of `GET` thumbnail `id` (environment `development`).
    fn thumbnail_status(&self, agent: &ureq::Agent, id: &str) -> u16 {
        agent
            .get(format!(
                "{}/v1/thumbnails/{id}?environment=development",
                self.base
            ))
            .header("authorization", &format!("Bearer {}", self.token))
            .call()
            .unwrap()
            .status()
            .as_u16()
    }

    fn status(&self, agent: &ureq::Agent, job: &str) -> Value {
        let mut r = agent
            .get(format!("{}/v1/status/{job}", self.base))
            .header("authorization", &format!("Bearer {}", self.token))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "status of {job}");
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// Polls until every job is finished; returns their final status bodies.
    fn wait_all(&self, jobs: &[String], timeout: Duration) -> Vec<Value> {
        let agent = Self::agent();
        let deadline = Instant::now() + timeout;
        let mut done: Vec<Option<Value>> = vec![None; jobs.len()];
        while done.iter().any(Option::is_none) {
            assert!(
                Instant::now() < deadline,
                "{} of {} jobs unfinished after {timeout:?}; log: {}",
                done.iter().filter(|d| d.is_none()).count(),
                jobs.len(),
                self.data_dir.with_extension("log").display()
            );
            for (job, slot) in jobs.iter().zip(done.iter_mut()) {
                if slot.is_none() {
                    let s = self.status(&agent, job);
                    if matches!(s["status"].as_str(), Some("succeeded" | "failed")) {
                        *slot = Some(s);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        done.into_iter().map(Option::unwrap).collect()
    }

    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }

    /// SIGKILL while others still hold `&self` (reaped on drop).
    fn sigkill(&self) {
        let ok = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn job_id(body: &Value) -> String {
    body["id"].as_str().expect("a job id").to_owned()
}

#[test]
fn sigkill_while_queued_and_processing_loses_nothing() {
    sigkill_run("full");
}

#[test]
fn sigkill_loses_nothing_with_process_durability() {
    sigkill_run("process");
}

fn sigkill_run(durability: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let set = format!("durability={durability}");
    let server = Server::start(&data, &["--workers", "1", "--set", &set]);
    let agent = Server::agent();
    let image = png(1600, 1200, 1);
    let mut jobs = Vec::new();
    for i in 0..24 {
        let (status, body) = server.submit(&agent, &format!("k{i}"), &image);
        assert!(status == 202 || status == 201, "{status}: {body}");
        jobs.push(job_id(&body));
    }
    // Kill once some jobs are done and others are still queued or processing.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states: Vec<String> = jobs
            .iter()
            .map(|j| {
                server.status(&agent, j)["status"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let succeeded = states.iter().filter(|s| *s == "succeeded").count();
        if succeeded >= 2 {
            assert!(
                succeeded < jobs.len(),
                "too fast to kill mid-way: {states:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {states:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill9();

    let server = Server::start(&data, &["--workers", "2", "--set", &set]);
    let finals = server.wait_all(&jobs, Duration::from_secs(120));
    for f in &finals {
        assert_eq!(f["status"], "succeeded", "{f}");
        assert_eq!(f["result"]["width"], 330);
    }
    // Every thumbnail is served.
    for i in 0..24 {
        assert_eq!(
            server.thumbnail_status(&agent, &format!("k{i}")),
            200,
            "k{i}"
        );
    }
}

/// Waiting creates run at once on the server's own workers (local runs, nothing stored or
/// queued first). Killed while clients keep sending them, the server may drop requests it
/// has not answered, but every job it answered (201, or 202 when the wait ran out) is
/// finished after the restart and its thumbnail served.
#[test]
fn sigkill_during_waiting_creates_loses_no_answered_job() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--workers", "1"]);
    let image = png(1600, 1200, 3);
    let answered = std::sync::Mutex::new(Vec::<(String, String)>::new());
    std::thread::scope(|s| {
        for c in 0..4 {
            let (server, image, answered) = (&server, &image, &answered);
            s.spawn(move || {
                let agent = Server::agent();
                for i in 0.. {
                    let id = format!("w{c}-{i}");
                    let Some((status, body)) = server.try_submit(&agent, &id, image, "wait=10")
                    else {
                        return; // the server is gone
                    };
                    assert!(status == 201 || status == 202, "{status}: {body}");
                    answered.lock().unwrap().push((id, job_id(&body)));
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while answered.lock().unwrap().len() < 6 {
            assert!(Instant::now() < deadline, "no answers");
            std::thread::sleep(Duration::from_millis(10));
        }
        server.sigkill();
    });
    drop(server);

    let answered = answered.into_inner().unwrap();
    let server = Server::start(&data, &["--workers", "2"]);
    let jobs: Vec<String> = answered.iter().map(|(_, job)| job.clone()).collect();
    for f in server.wait_all(&jobs, Duration::from_secs(120)) {
        assert_eq!(f["status"], "succeeded", "{f}");
    }
    let agent = Server::agent();
    for (id, _) in &answered {
        assert_eq!(server.thumbnail_status(&agent, id), 200, "{id}");
    }
}

#[test]
fn two_hundred_concurrent_uploads_none_lost() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let image = png(240, 180, 2);
    let jobs: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let (server, image) = (&server, &image);
                s.spawn(move || {
                    let (status, body) = server.submit(&Server::agent(), &format!("c{i}"), image);
                    assert!(
                        status == 202 || status == 201,
                        "upload {i}: {status} {body}"
                    );
                    job_id(&body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let unique: std::collections::HashSet<_> = jobs.iter().collect();
    assert_eq!(unique.len(), 200);
    for f in server.wait_all(&jobs, Duration::from_secs(120)) {
        assert_eq!(f["status"], "succeeded", "{f}");
    }
}

#[test]
fn sigterm_finishes_in_flight_jobs_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--workers", "1"]);
    let agent = Server::agent();
    let image = png(1600, 1200, 3);
    let jobs: Vec<String> = (0..8)
        .map(|i| job_id(&server.submit(&agent, &format!("t{i}"), &image).1))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let status = server.terminate();
    assert!(status.success(), "graceful exit: {status:?}");
    // Nothing is left half-done: every job is queued or finished, none stuck `processing`.
    let server = Server::start(&data, &[]);
    for f in server.wait_all(&jobs, Duration::from_secs(120)) {
        assert_eq!(f["status"], "succeeded", "{f}");
    }
}

#[test]
fn a_second_serve_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _first = Server::start(&data, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_thumbd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another thumbd process"), "{err}");
}

#[test]
fn settings_errors_are_reported_together() {
    let out = Command::new(env!("CARGO_BIN_EXE_thumbd"))
        .args(["serve", "--set", "workers=0", "--set", "bogus=1"])
        .env("THUMBD_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["workers", "bogus", "THUMBD_LISTEN"] {
        assert!(err.contains(needle), "{needle} not in: {err}");
    }
}

/// Runs the README's `sh` block after `<!-- example:{name} -->` as written, in a fresh
/// folder holding a copy of the repository's `samples/`, against a running server; returns the folder
/// and stdout.
fn run_readme_example(name: &str) -> (tempfile::TempDir, String) {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let marker = format!("<!-- example:{name} -->");
    let start = readme.find(&marker).expect("marker");
    let code = readme[start..]
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block after the marker");

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    std::fs::create_dir(dir.path().join("samples")).unwrap();
    for file in ["photo.jpg", "logo.png"] {
        std::fs::copy(samples.join(file), dir.path().join("samples").join(file)).unwrap();
    }
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", code])
        .current_dir(dir.path())
        .env("THUMBD", &server.base)
        .env("TOKEN", &server.token)
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "example failed:\n{code}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, stdout)
}

/// The README's ClassKit-style example.
#[test]
fn readme_curl_example_runs_as_written() {
    let (dir, stdout) = run_readme_example("classkit");
    assert!(stdout.contains("\"status\":\"succeeded\""), "{stdout}");
    let thumb = std::fs::read(dir.path().join("thumb.png")).expect("the example saves thumb.png");
    assert_eq!(&thumb[..8], b"\x89PNG\r\n\x1a\n");
}

/// The README's uploads, contexts and idempotency example.
#[test]
fn readme_sources_example_runs_as_written() {
    let (_dir, stdout) = run_readme_example("sources");
    let lines: Vec<Value> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(
        lines[0]["status"], "succeeded",
        "the ticket create is synchronous"
    );
    assert_eq!(lines[0]["result"]["width"], 330);
    assert_eq!(lines[1]["contextId"], "course-1");
    assert_eq!(lines[1]["thumbnailId"], "logo");
    assert_eq!(lines[2]["status"], "queued");
}

/// `log_format = json`: one JSON object per line, requests with their id, jobs with theirs.
#[test]
fn json_logs_are_flat_with_an_access_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--set", "log_format=json"]);
    let agent = Server::agent();
    let (status, body) = server.submit(&agent, "logged", &png(200, 200, 3));
    assert_eq!(status, 202, "{body}");
    let job = body["id"].as_str().unwrap().to_owned();
    server.wait_all(std::slice::from_ref(&job), Duration::from_secs(20));
    let missing = agent
        .get(format!(
            "{}/v1/thumbnails/none?environment=production",
            server.base
        ))
        .header("Authorization", &format!("Bearer {}", server.token))
        .header("X-Request-Id", "trace-me-7")
        .call()
        .unwrap();
    assert_eq!(missing.status(), 404);
    drop(server);
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let find = |what: &dyn Fn(&Value) -> bool| {
        lines
            .iter()
            .find(|l| what(l))
            .unwrap_or_else(|| panic!("no such line in:\n{log}"))
            .clone()
    };
    let accepted = find(&|l| l["message"] == "job accepted");
    assert_eq!(accepted["job_id"], job.as_str());
    let request_id = accepted["request_id"].as_str().unwrap_or("");
    assert_eq!(request_id.len(), 36, "a UUID request id: {accepted}");
    let succeeded = find(&|l| l["message"] == "job succeeded");
    assert_eq!(succeeded["job_id"], job.as_str(), "{succeeded}");
    // The access line of the create: its request id, route, status and tenant.
    let answered = find(&|l| l["message"] == "answered" && l["request_id"] == request_id);
    assert_eq!(answered["level"], "INFO");
    assert_eq!(answered["method"], "POST");
    assert_eq!(answered["route"], "/v1/thumbnails");
    assert_eq!(answered["status"], 202);
    assert_eq!(answered["tenant"], "default");
    assert!(answered["duration_ms"].as_f64().is_some(), "{answered}");
    // A client's own request id is kept; a 404 is answered, not an error.
    let not_found = find(&|l| l["request_id"] == "trace-me-7" && l["message"] == "answered");
    assert_eq!(not_found["route"], "/v1/thumbnails/{id}", "{not_found}");
    assert_eq!(not_found["status"], 404);
    assert!(
        !lines.iter().any(|l| l["level"] == "ERROR"),
        "nothing here is an error:\n{log}"
    );
}

#[test]
fn the_token_command_never_makes_a_secret_unasked() {
    // Run from another directory than `serve`, it used to create ./thumbd-data and a new
    // secret, and mint a token every server rejected.
    let dir = tempfile::tempdir().unwrap();
    let token = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_thumbd"))
            .args(["token", "--scope", "thumbnails:read"])
            .args(extra)
            .current_dir(dir.path())
            .env_remove("THUMBD_JWT_SECRET")
            .env_remove("THUMBD_DATA_DIR")
            .env_remove("THUMBD_CONFIG")
            .output()
            .unwrap()
    };
    let out = token(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--init"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.path().join("thumbd-data").exists(), "nothing created");
    let out = token(&["--init"]);
    assert!(out.status.success());
    assert!(dir.path().join("thumbd-data/jwt-secret").exists());
    assert!(token(&[]).status.success(), "the secret is there now");
}

#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let _ = Server::agent()
        .get(format!(
            "{}/v1/thumbnails/none?environment=production",
            server.base
        ))
        .call();
    drop(server);
    let log = std::fs::read_to_string(data.with_extension("log")).unwrap();
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "escape codes in {log:?}");
}

#[test]
fn token_command_mints_tokens_the_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let mint = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_thumbd"))
            .arg("token")
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .env_remove("THUMBD_JWT_SECRET")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let read = mint(&["--scope", "thumbnails:read"]);
    let prod = mint(&["--scope", "thumbnails:write", "--environment", "production"]);
    let agent = Server::agent();
    let post = |token: &str, env: &str| {
        agent
            .post(format!(
                "{}/v1/thumbnails?thumbnailId=x&environment={env}",
                server.base
            ))
            .header("authorization", &format!("Bearer {token}"))
            .header("content-type", "image/png")
            .send(&png(100, 100, 4)[..])
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post(&read, "development"), 403, "read scope cannot write");
    assert_eq!(post(&prod, "development"), 403, "limited to production");
    assert!(matches!(post(&prod, "production"), 201 | 202));
    let r = agent
        .get(format!(
            "{}/v1/thumbnails/none?environment=production",
            server.base
        ))
        .header("authorization", &format!("Bearer {read}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[test]
fn migrate_creates_the_schema_and_serve_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_thumbd"))
        .args(["migrate", "--set"])
        .arg(format!("data_dir={}", data.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("is up to date"), "{stdout}");
    assert!(data.join("thumbd.db").exists());
    // serve starts on the migrated database and works.
    let server = Server::start(&data, &[]);
    let (status, _) = server.submit(&Server::agent(), "after-migrate", &png(120, 120, 5));
    assert!(status == 202 || status == 201, "{status}");
}

/// A tiny HTTP server on loopback that answers every request with `body` as a PNG.
fn image_server(body: Vec<u8>) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}/cover.png")
}

/// PUT `{"url": …}` waiting up to 10 s; returns (status, body).
fn put_url(server: &Server, id: &str, url: &str) -> (u16, Value) {
    let mut r = Server::agent()
        .put(format!(
            "{}/v1/thumbnails/{id}?environment=production",
            server.base
        ))
        .header("authorization", &format!("Bearer {}", server.token))
        .header("content-type", "application/json")
        .header("prefer", "wait=10")
        .send(serde_json::json!({ "url": url }).to_string())
        .unwrap();
    (
        r.status().as_u16(),
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap(),
    )
}

#[test]
fn url_sources_are_fetched_only_where_allowed() {
    let url = image_server(png(640, 480, 1));
    let dir = tempfile::tempdir().unwrap();

    // Default settings: a loopback source is refused by the worker's guard.
    let server = Server::start(&dir.path().join("strict"), &[]);
    let (status, body) = put_url(&server, "remote", &url);
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "SourceNotAllowed", "{body}");
    drop(server);

    // THUMBD_ALLOW_PRIVATE_SOURCES (here as its setting): downloaded and thumbnailed.
    let server = Server::start(
        &dir.path().join("open"),
        &["--set", "allow_private_sources=true"],
    );
    let (status, body) = put_url(&server, "remote", &url);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["result"]["width"], 330);
    assert_eq!(body["result"]["height"], 248);

    // A source that refuses connections: tried three times (1 s, then 2 s apart), then the
    // job fails. The client's bad URL is no warning or error for the operator.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/gone.png", listener.local_addr().unwrap())
    };
    let (status, body) = put_url(&server, "refused", &closed);
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "SourceFetchFailed", "{body}");
    drop(server);
    let log = std::fs::read_to_string(dir.path().join("open.log")).unwrap();
    assert_eq!(
        log.matches("URL source failed: retrying").count(),
        2,
        "{log}"
    );
    assert!(!log.contains(" WARN ") && !log.contains(" ERROR "), "{log}");
}

/// `serve` prints a token only while it uses the secret it generated; a configured key is
/// its owner's, and a short one is refused. `api` never generates a secret.
#[test]
fn tokens_are_printed_only_for_a_generated_secret() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let run = |role: &str, secret: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_thumbd"));
        cmd.args([role, "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env_remove("THUMBD_JWT_SECRET")
            .env_remove("THUMBD_AMQP_URL")
            .env_remove("THUMBD_AUTH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(secret) = secret {
            cmd.env("THUMBD_JWT_SECRET", secret);
        }
        cmd.spawn().unwrap()
    };
    // Configured: the listening line and the backends, and no token.
    let mut child = run("serve", Some(&"k".repeat(32)));
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("thumbd listening on "), "{first}");
    let second = lines.next().unwrap().unwrap();
    child.kill().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    child.wait().unwrap();
    assert!(
        !second.contains("token") && rest.iter().all(|l| !l.contains("token")),
        "{second} {rest:?}"
    );

    for (role, secret, expected) in [
        (
            "serve",
            Some("too-short"),
            "jwt_secret: 9 bytes is too short",
        ),
        ("api", None, "no token key configured"),
    ] {
        let out = run(role, secret).wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{role}: {stderr}");
        assert!(stderr.contains(expected), "{role}: {stderr}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("token"),
            "{role}"
        );
    }
    assert!(
        !dir.path().join("jwt-secret").exists(),
        "no secret generated while one was configured or for api"
    );
}

/// `thumbd migrate` says how many migrations it applied, not how many were left after.
#[test]
fn migrate_reports_what_it_applied() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = || {
        let out = Command::new(env!("CARGO_BIN_EXE_thumbd"))
            .args(["migrate", "--set"])
            .arg(format!("data_dir={}", dir.path().display()))
            .env_remove("THUMBD_DATABASE_URL")
            .env_remove("THUMBD_DATA_DIR")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = migrate();
    assert!(
        first.contains("migrations applied") && !first.contains("(0 migrations"),
        "{first}"
    );
    assert!(migrate().contains("(0 migrations applied)"));
}

/// Every command that reads settings lists them in its `--help`, not only `thumbd --help`.
#[test]
fn each_command_lists_its_settings() {
    for command in ["serve", "api", "worker", "token", "migrate"] {
        let out = Command::new(env!("CARGO_BIN_EXE_thumbd"))
            .args([command, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(
            help.contains("THUMBD_LISTEN") && help.contains("THUMBD_JWT_SECRET"),
            "thumbd {command} --help:\n{help}"
        );
    }
}
