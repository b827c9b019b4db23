//! `S3BlobStore` against a real S3-compatible server: moto's `moto_server`, started per test
//! on a free loopback port and killed when the test ends.
//!
//! Without `moto_server` on `PATH` the server tests print `==== SKIP … ====` and pass, unless
//! `THUMBD_REQUIRE_SERVICES=1` (CI), where they fail. Install it with
//! `python3 -m pip install 'moto[server]'`.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use secrecy::SecretString;
use thumbd_jobs::{BlobKey, BlobStore, Error, JobId};
use thumbd_s3::{S3BlobStore, S3Credentials, S3Location, S3Options};

/// A `moto_server` child process, killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
    log: tempfile::NamedTempFile,
}

impl Moto {
    /// Starts moto on a free port and waits until it answers; `None` (after a SKIP line) if
    /// `moto_server` is not installed and services are not required.
    fn start(test: &str) -> Option<Moto> {
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
    fn create_bucket(&self, bucket: &str) {
        agent()
            .put(format!("{}/{bucket}", self.endpoint))
            .send_empty()
            .unwrap_or_else(|e| panic!("create bucket {bucket}: {e}"));
    }

    /// A store on `bucket` with test credentials (moto accepts any).
    fn store(&self, bucket: &str, extra_query: &str) -> S3BlobStore {
        let url = format!(
            "s3://{bucket}?endpoint={}&region=us-east-1{extra_query}",
            self.endpoint
        );
        open(&url)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn open(url: &str) -> S3BlobStore {
    let options = S3Options {
        credentials: Some(S3Credentials {
            access_key_id: "thumbd-test".into(),
            secret_access_key: SecretString::from("thumbd-test-secret"),
            session_token: None,
        }),
        ..S3Options::default()
    };
    S3BlobStore::open(S3Location::parse(url).unwrap(), options).unwrap()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| File::open(p).is_ok_and(|f| f.metadata().is_ok_and(|m| m.is_file())))
}

/// The house pattern of `thumbd_jobs::services`: SKIP loudly, or fail when services are
/// required.
fn skip_or_fail(test: &str, why: &str) {
    let required = std::env::var("THUMBD_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    assert!(!required, "{test}: {why} and THUMBD_REQUIRE_SERVICES=1");
    eprintln!(
        "\n==== SKIP {test}: {why}. Install it with: python3 -m pip install 'moto[server]' ====\n"
    );
}

fn key(s: &str) -> BlobKey {
    BlobKey::parse(s).unwrap()
}

fn assert_unavailable<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) {
    match result {
        Err(e @ Error::Unavailable { backend: "S3", .. }) => assert!(e.is_transient()),
        other => panic!("{what}: expected S3 unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn conformance_on_moto() {
    let Some(moto) = Moto::start("conformance_on_moto") else {
        return;
    };
    moto.create_bucket("thumbd");
    thumbd_jobs::conformance::blob_store(&moto.store("thumbd", "")).await;
    // And again under a prefix, in the same bucket.
    thumbd_jobs::conformance::blob_store(&moto.store("thumbd", "&prefix=tenant/one")).await;
}

#[tokio::test]
async fn nested_keys_round_trip() {
    let Some(moto) = Moto::start("nested_keys_round_trip") else {
        return;
    };
    moto.create_bucket("nested");
    let plain = moto.store("nested", "");
    let prefixed = moto.store("nested", "&prefix=/env/prod/");
    let keys = [
        key("a"),
        key("a/b"),
        key("a/b/c/d/e/f/g.bin"),
        key("thumbnails/2a/2a00-0190e7c0"),
        BlobKey::thumbnail(&format!("{:064x}", 7), JobId::new()),
        BlobKey::original(JobId::new()),
    ];
    for (i, k) in keys.iter().enumerate() {
        let body = Bytes::from(format!("plain {i} {k}"));
        let under = Bytes::from(format!("prefixed {i} {k}"));
        plain.put(k, body.clone()).await.unwrap();
        prefixed.put(k, under.clone()).await.unwrap();
        assert_eq!(plain.get(k).await.unwrap(), Some(body.clone()), "{k}");
        assert_eq!(prefixed.get(k).await.unwrap(), Some(under.clone()), "{k}");
        // Where the object really is: under the prefix, seen from a store without one.
        let full = key(&format!("env/prod/{k}"));
        assert_eq!(plain.get(&full).await.unwrap(), Some(under), "{full}");
    }
    // A "directory" is not an object: a key's parent is missing, and deleting one key keeps
    // its neighbours.
    assert_eq!(plain.get(&key("a/b/c")).await.unwrap(), None);
    assert!(!plain.delete(&key("a/b/c")).await.unwrap());
    assert!(plain.delete(&key("a/b")).await.unwrap());
    assert!(plain.get(&key("a")).await.unwrap().is_some());
    assert!(
        plain
            .get(&key("a/b/c/d/e/f/g.bin"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(prefixed.get(&key("a/b")).await.unwrap().is_some());
}

#[tokio::test]
async fn five_megabytes_round_trip() {
    let Some(moto) = Moto::start("five_megabytes_round_trip") else {
        return;
    };
    moto.create_bucket("big");
    let store = moto.store("big", "");
    let mut state = 0x9e37_79b9_u32;
    let big: Vec<u8> = (0..5 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect();
    let k = BlobKey::original(JobId::new());
    store.put(&k, Bytes::from(big.clone())).await.unwrap();
    let got = store.get(&k).await.unwrap().expect("the 5 MB blob");
    assert_eq!(got.len(), big.len());
    assert!(got == big, "5 MB blob read back differs");
    assert!(store.delete(&k).await.unwrap());
}

#[tokio::test]
async fn missing_bucket_is_unavailable_not_empty() {
    let Some(moto) = Moto::start("missing_bucket_is_unavailable_not_empty") else {
        return;
    };
    let store = moto.store("never-created", "");
    let k = key("originals/x");
    assert_unavailable("ping", store.ping().await);
    assert_unavailable("get", store.get(&k).await);
    assert_unavailable("put", store.put(&k, Bytes::from_static(b"x")).await);
}

#[tokio::test]
async fn unreachable_endpoint_is_unavailable_quickly() {
    // Port 1 on loopback: nothing listens there, connections are refused.
    let store = open("s3://thumbd?endpoint=http://127.0.0.1:1&region=us-east-1");
    let k = key("originals/x");
    let started = Instant::now();
    assert_unavailable("ping", store.ping().await);
    assert_unavailable("put", store.put(&k, Bytes::from_static(b"x")).await);
    assert_unavailable("get", store.get(&k).await);
    assert_unavailable("delete", store.delete(&k).await);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let err = store.ping().await.unwrap_err().to_string();
    assert!(err.starts_with("S3 unavailable: LIST"), "{err}");
    assert!(!err.contains("thumbd-test-secret"), "{err}");
}
