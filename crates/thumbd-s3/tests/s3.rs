//! `S3BlobStore` against a real S3-compatible server: moto's `moto_server`, started per test
//! on a free loopback port and killed when the test ends.
//!
//! Without `moto_server` on `PATH` the server tests print `==== SKIP … ====` and pass, unless
//! `THUMBD_REQUIRE_SERVICES=1` (CI), where they fail. Install it with
//! `python3 -m pip install 'moto[server]'`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use thumbd_jobs::{BlobKey, BlobStore, Error, JobId};

#[path = "support/moto.rs"]
mod moto;
use moto::{Moto, open};

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
