//! A `moto_server` (an S3-compatible server from PyPI) for tests: started on a free loopback
//! port, killed on drop. Shared by this crate's tests and the workspace's black-box tests
//! (included with `#[path]`).
#![allow(dead_code)] // each test binary uses part of it

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use thumbd_s3::{S3BlobStore, S3Credentials, S3Location, S3Options};

/// The credentials the tests use (moto accepts any).
pub const ACCESS_KEY_ID: &str = "thumbd-test";
/// See [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "thumbd-test-secret";

/// A `moto_server` child process, killed on drop.
pub struct Moto {
    pub child: Child,
    pub endpoint: String,
    pub log: tempfile::NamedTempFile,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers; `None` (after a SKIP line) if
    /// `moto_server` is not installed and services are not required.
    pub fn start(test: &str) -> Option<Moto> {
        let Some(program) = find_on_path("moto_server") else {
            skip_or_fail(test, "moto_server is not installed");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        // Its request log goes to a file: a pipe nobody reads would fill and stall moto.
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("spawn moto_server");
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if agent().get(&moto.endpoint).call().is_ok() {
                return Some(moto);
            }
            if let Some(status) = moto.child.try_wait().unwrap() {
                panic!("moto_server exited ({status}): {}", moto.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer in 30 s: {}",
                moto.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Creates `bucket` with a plain `PUT /bucket` (object_store cannot create buckets).
    pub fn create_bucket(&self, bucket: &str) {
        agent()
            .put(format!("{}/{bucket}", self.endpoint))
            .send_empty()
            .unwrap_or_else(|e| panic!("create bucket {bucket}: {e}"));
    }

    /// A store on `bucket` with test credentials (moto accepts any).
    pub fn store(&self, bucket: &str, extra_query: &str) -> S3BlobStore {
        let url = format!(
            "s3://{bucket}?endpoint={}&region=us-east-1{extra_query}",
            self.endpoint
        );
        open(&url)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn open(url: &str) -> S3BlobStore {
    let options = S3Options {
        credentials: Some(S3Credentials {
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: SecretString::from(SECRET_ACCESS_KEY),
            session_token: None,
        }),
        ..S3Options::default()
    };
    S3BlobStore::open(S3Location::parse(url).unwrap(), options).unwrap()
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

pub fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| File::open(p).is_ok_and(|f| f.metadata().is_ok_and(|m| m.is_file())))
}

/// The house pattern of `thumbd_jobs::services`: SKIP loudly, or fail when services are
/// required.
pub fn skip_or_fail(test: &str, why: &str) {
    let required = std::env::var("THUMBD_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    assert!(!required, "{test}: {why} and THUMBD_REQUIRE_SERVICES=1");
    eprintln!(
        "\n==== SKIP {test}: {why}. Install it with: python3 -m pip install 'moto[server]' ====\n"
    );
}
