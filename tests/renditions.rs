//! Profiles as operators run them: `thumbd api` and `thumbd worker` configured with
//! `THUMBD_PROFILES`, sets made from HTTP creates and from producers' messages that name a
//! profile, served by `Accept`; and `thumbd serve` killed while its background lane makes
//! AVIF renditions. (Embedded mode over HTTP: crates/thumbd-api/tests/renditions.rs.)

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/images.rs"]
mod images;
#[path = "support/serve_process.rs"]
mod serve_process;

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use cluster::Cluster;
use images::png;

const PROFILES: &str = "web=80:webp,160:webp,330:webp,330:png";

fn formats(result: &Value) -> Vec<String> {
    result["renditions"]
        .as_array()
        .unwrap_or_else(|| panic!("no renditions in {result}"))
        .iter()
        .map(|r| {
            format!(
                "{}:{}:{}",
                r["size"],
                r["format"].as_str().unwrap(),
                r["status"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn sets_from_http_and_from_producers_are_served_by_accept() {
    let Some(mut c) = Cluster::new("renditions") else {
        return;
    };
    c.env.push(("THUMBD_PROFILES".into(), PROFILES.into()));
    c.start_api();
    c.start_worker();
    let all_ready = [
        "80:webp:ready",
        "160:webp:ready",
        "330:webp:ready",
        "330:png:ready",
    ];

    // Over HTTP: `profile=web` in the query.
    let mut r = cluster::agent()
        .put(format!(
            "{}/v1/thumbnails/web-1?environment=development&profile=web",
            c.api()
        ))
        .header("authorization", &format!("Bearer {}", c.token))
        .header("content-type", "image/png")
        .header("prefer", "respond-async")
        .send(&png(640, 480, 1))
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let job: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let done = c.wait_all(
        &[job["id"].as_str().unwrap().to_owned()],
        Duration::from_secs(60),
    );
    assert_eq!(done[0]["status"], "succeeded", "{}", done[0]);
    assert_eq!(formats(&done[0]["result"]), all_ready);

    let get = |path: &str, accept: &str| {
        let mut r = cluster::agent()
            .get(format!("{}{path}", c.api()))
            .header("authorization", &format!("Bearer {}", c.token))
            .header("accept", accept)
            .call()
            .unwrap();
        let vary = r
            .headers()
            .get("vary")
            .map(|v| v.to_str().unwrap().to_owned());
        (
            r.status().as_u16(),
            vary,
            r.body_mut().read_to_vec().unwrap(),
        )
    };
    let url = "/v1/thumbnails/web-1?environment=development";
    let (status, vary, body) = get(url, "image/avif,image/webp,*/*");
    assert_eq!((status, vary.as_deref()), (200, Some("Accept")));
    assert_eq!(
        thumbcore::ImageFormat::sniff(&body),
        Some(thumbcore::ImageFormat::WebP)
    );
    let (_, _, body) = get(url, "image/png");
    assert!(body.starts_with(b"\x89PNG"));
    let (status, _, body) = get("/v1/thumbnails/web-1/meta?environment=development", "*/*");
    assert_eq!(status, 200);
    let meta: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(meta["profile"], "web");
    assert_eq!(meta["source"]["width"], 640);

    // From a producer: the message names the profile; its reply lists the set. A message
    // naming a profile no worker knows fails its job with a code.
    let known = "0192e4a0-0000-7000-8000-00000000f001";
    let unknown = "0192e4a0-0000-7000-8000-00000000f002";
    let reply = c.rt.block_on(async {
        let mut producer = cluster::Producer::connect(&c).await;
        for (job, id, profile) in [(known, "web-2", "web"), (unknown, "web-3", "nope")] {
            let message = serde_json::json!({
                "jobId": job,
                "environment": "development",
                "thumbnailId": id,
                "profile": profile,
                "source": {
                    "inline": base64::engine::general_purpose::STANDARD.encode(png(300, 200, 2)),
                    "contentType": "image/png"
                },
                "replyTo": producer.reply_to,
            });
            producer
                .publish(&serde_json::to_vec(&message).unwrap())
                .await;
        }
        let first = producer.reply(Duration::from_secs(30)).await;
        let second = producer.reply(Duration::from_secs(30)).await;
        let _ = producer.connection.close(200, "done".into()).await;
        [first, second]
    });
    let of = |job: &str| reply.iter().find(|r| r["id"] == job).unwrap().clone();
    let made = of(known);
    assert_eq!(made["status"], "succeeded", "{made}");
    assert_eq!(formats(&made["result"]), all_ready);
    let failed = of(unknown);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "InvalidRequestBody", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
    c.sigterm_all();
}

/// `/meta` of thumbnail `big` from the server at `base`.
fn meta(base: &str, token: &str) -> Value {
    let mut r = cluster::agent()
        .get(format!(
            "{base}/v1/thumbnails/big/meta?environment=development"
        ))
        .header("authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

fn pending(meta: &Value) -> usize {
    meta["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "pending")
        .count()
}

/// `thumbd serve` killed (SIGKILL) while its lane encodes AVIF renditions: restarted on the
/// same data, it makes them, once each, and deletes their sources.
#[test]
fn a_serve_killed_during_the_avif_lane_finishes_it_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [(
        "THUMBD_PROFILES",
        "big=160:webp,1200:avif,800:avif,1200:png",
    )];
    let start = || {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(dir.path().join("serve.log"))
            .unwrap();
        serve_process::spawn_env(
            &data,
            &["--workers", "1"],
            &env,
            "info,sqlx=warn",
            log.into(),
        )
    };
    let mut serve = start();
    let mut r = cluster::agent()
        .post(format!(
            "{}/v1/thumbnails?thumbnailId=big&environment=development&profile=big",
            serve.base
        ))
        .header("authorization", &format!("Bearer {}", serve.token))
        .header("content-type", "image/png")
        .header("prefer", "wait=30")
        .send(&png(1600, 1200, 3))
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        201,
        "{}",
        r.body_mut().read_to_string().unwrap()
    );
    // Give the lane time to take the message, not to finish two large AVIFs.
    std::thread::sleep(Duration::from_millis(300));
    let before = meta(&serve.base, &serve.token);
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    assert_eq!(
        pending(&before),
        2,
        "killed after the lane finished: {before}"
    );

    let serve = start();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let after = loop {
        let m = meta(&serve.base, &serve.token);
        if pending(&m) == 0 {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "still pending: {m}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut avif = 0;
    for r in after["renditions"].as_array().unwrap() {
        assert_eq!(r["status"], "ready", "{r}");
        let mut g = cluster::agent()
            .get(format!("{}{}", serve.base, r["url"].as_str().unwrap()))
            .header("authorization", &format!("Bearer {}", serve.token))
            .call()
            .unwrap();
        assert_eq!(g.status().as_u16(), 200);
        let body = g
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .unwrap();
        assert_eq!(body.len().to_string(), r["bytes"].to_string());
        if r["format"] == "avif" {
            assert_eq!(&body[4..12], b"ftypavif");
            avif += 1;
        }
    }
    assert_eq!(avif, 2);
    // Exactly once: one blob per rendition, no source left.
    let blobs = data.join("blobs");
    assert_eq!(cluster::walk(&blobs.join("thumbnails")), 4);
    assert_eq!(cluster::walk(&blobs.join("sources")), 0);
    let mut serve = serve;
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
}
