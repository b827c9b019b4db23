//! Profiles and renditions over real HTTP (embedded backends, the worker in the test):
//! a set made per create, served by size, format or `Accept`, described by `/meta`,
//! swapped whole by a replace and deleted whole.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;

const WEB: &str = "web=80:webp,160:webp,330:webp,330:png";
const URL: &str = "/v1/thumbnails/set?environment=development";

fn post(profile: Option<&str>) -> String {
    let mut uri = "/v1/thumbnails?thumbnailId=set&environment=development".to_owned();
    if let Some(p) = profile {
        uri.push_str("&profile=");
        uri.push_str(p);
    }
    uri
}

/// Creates thumbnail `set` from `image` with `profile`, waiting for it (real HTTP).
async fn create_set(rig: &Rig, base: &str, profile: Option<&str>, image: Vec<u8>) -> Answer {
    rig.http(
        base,
        create(&post(profile), Some(&rw()), Some("image/png"), image),
    )
    .await
}

fn get_with(uri: &str, accept: Option<&str>, if_none_match: Option<&str>) -> Request<Body> {
    let mut r = Request::get(uri).header("authorization", rw());
    if let Some(a) = accept {
        r = r.header("accept", a);
    }
    if let Some(tag) = if_none_match {
        r = r.header("if-none-match", tag);
    }
    r.body(Body::empty()).unwrap()
}

/// The thumbnails' blob files in the rig's blob directory.
fn thumbnail_blobs(rig: &Rig) -> usize {
    let dir = rig.dir.path().join("blobs").join("thumbnails");
    let Ok(fans) = std::fs::read_dir(dir) else {
        return 0;
    };
    fans.flatten()
        .map(|fan| std::fs::read_dir(fan.path()).map_or(0, |d| d.flatten().count()))
        .sum()
}

/// What an image's first bytes say it is.
fn sniff(bytes: &[u8]) -> &'static str {
    match thumbcore::ImageFormat::sniff(bytes) {
        Some(f) => f.name(),
        None => "unknown",
    }
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let info = thumbcore::probe(bytes).unwrap();
    (info.width, info.height)
}

#[tokio::test]
async fn a_profile_makes_a_set_served_by_size_format_and_accept() {
    let rig = rig_with_profiles(WEB).await;
    let _worker = rig.run_worker();
    let base = rig.serve_http().await;

    let a = create_set(&rig, &base, Some("web"), png(400, 300)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let result = &a.json()["result"];
    // The seeds' fields describe the main rendition: the largest of the last format.
    assert_eq!(result["contentType"], "image/png");
    assert_eq!(
        (result["width"].as_u64(), result["height"].as_u64()),
        (Some(330), Some(248))
    );
    let renditions = result["renditions"].as_array().unwrap();
    let listed: Vec<(u64, u64, &str, &str)> = renditions
        .iter()
        .map(|r| {
            (
                r["size"].as_u64().unwrap(),
                r["width"].as_u64().unwrap(),
                r["format"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (80, 80, "webp", "ready"),
            (160, 160, "webp", "ready"),
            (330, 330, "webp", "ready"),
            (330, 330, "png", "ready"),
        ]
    );
    assert_eq!(
        result["srcset"]["image/webp"],
        format!(
            "{URL}&size=80&format=webp 80w, {URL}&size=160&format=webp 160w, {URL}&size=330&format=webp 330w"
        )
    );
    assert_eq!(
        result["srcset"]["image/png"],
        format!("{URL}&size=330&format=png 330w")
    );

    // Every rendition's URL serves bytes of its format and size, with its own ETag.
    let mut tags = Vec::new();
    for r in renditions {
        let g = rig
            .http(&base, get_with(r["url"].as_str().unwrap(), None, None))
            .await;
        assert_eq!(g.status, StatusCode::OK);
        assert_eq!(sniff(&g.body), r["format"].as_str().unwrap());
        assert_eq!(
            dimensions(&g.body),
            (
                u32::try_from(r["width"].as_u64().unwrap()).unwrap(),
                u32::try_from(r["height"].as_u64().unwrap()).unwrap()
            )
        );
        assert_eq!(g.header("etag"), r["etag"].as_str());
        assert_eq!(g.header("content-length").unwrap(), r["bytes"].to_string());
        tags.push(r["etag"].as_str().unwrap().to_owned());
    }
    tags.dedup();
    assert_eq!(tags.len(), 4, "one ETag per rendition");

    // Accept decides the format among the ready ones of the size, and says so in Vary.
    let browser = "image/avif,image/webp,image/apng,*/*;q=0.8";
    for (accept, size, format) in [
        (Some(browser), None, "webp"),
        (Some("image/webp"), None, "webp"),
        (Some("image/png"), None, "png"),
        (Some("image/webp;q=0.5, image/png"), None, "png"),
        (None, None, "png"),
        (Some("*/*"), None, "png"),
        (Some(browser), Some(100), "webp"),
    ] {
        let uri = match size {
            Some(n) => format!("{URL}&size={n}"),
            None => URL.to_owned(),
        };
        let g = rig.http(&base, get_with(&uri, accept, None)).await;
        assert_eq!(g.status, StatusCode::OK, "{accept:?}");
        assert_eq!(sniff(&g.body), format, "{accept:?} size {size:?}");
        // 160 has WebP only: nothing was negotiated there.
        let vary = if size.is_some() { None } else { Some("Accept") };
        assert_eq!(g.header("vary"), vary, "{accept:?}");
        assert_eq!(g.header("content-type").unwrap(), format!("image/{format}"));
        if size == Some(100) {
            assert_eq!(
                dimensions(&g.body),
                (160, 120),
                "size=100 is the 160 rendition"
            );
        }
    }
    // A revalidation is per rendition: the WebP's tag matches the WebP only.
    let webp_tag = &tags[2];
    let g = rig
        .http(&base, get_with(URL, Some("image/webp"), Some(webp_tag)))
        .await;
    assert_eq!(g.status, StatusCode::NOT_MODIFIED);
    let g = rig
        .http(&base, get_with(URL, Some("image/png"), Some(webp_tag)))
        .await;
    assert_eq!(g.status, StatusCode::OK);
    // `v` pins the version of the rendition served.
    let g = rig
        .http(
            &base,
            get_with(
                &format!("{URL}&format=webp&v={}", webp_tag.trim_matches('"')),
                None,
                None,
            ),
        )
        .await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(
        g.header("cache-control"),
        Some("private, max-age=31536000, immutable")
    );

    // An explicit format is not negotiated; one the set lacks is 404.
    let g = rig
        .http(
            &base,
            get_with(&format!("{URL}&format=png"), Some("image/webp"), None),
        )
        .await;
    assert_eq!((sniff(&g.body), g.header("vary")), ("png", None));
    let g = rig
        .http(&base, get_with(&format!("{URL}&format=jpeg"), None, None))
        .await;
    assert_eq!(g.status, StatusCode::NOT_FOUND);
    assert_eq!(g.code(), "RenditionNotFound");
    for bad in ["size=0", "size=big", "format=gif"] {
        let g = rig
            .http(&base, get_with(&format!("{URL}&{bad}"), None, None))
            .await;
        assert_eq!(g.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(g.code(), "InvalidQueryParameter", "{bad}");
    }

    // /meta describes the set, with a placeholder of the image's aspect ratio.
    let m = rig
        .http(
            &base,
            get_with(
                "/v1/thumbnails/set/meta?environment=development",
                None,
                None,
            ),
        )
        .await;
    assert_eq!(m.status, StatusCode::OK, "{:?}", m.body);
    let meta = m.json();
    assert_eq!(meta["thumbnailId"], "set");
    assert_eq!(meta["profile"], "web");
    assert_eq!(
        meta["source"],
        serde_json::json!({"width": 400, "height": 300, "format": "png", "animated": false})
    );
    assert_eq!(meta["renditions"], result["renditions"]);
    assert_eq!(meta["srcset"], result["srcset"]);
    let hash = base64_decode(meta["placeholder"]["thumbhash"].as_str().unwrap());
    let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).unwrap();
    assert!((ratio - 4.0 / 3.0).abs() < 0.15, "ThumbHash aspect {ratio}");
    assert!(meta["createdAt"].is_string() && meta["updatedAt"].is_string());
    assert_eq!(thumbnail_blobs(&rig), 4);

    // Replaced with the default profile: the whole set swaps, the old blobs go.
    let a = create_set(&rig, &base, None, png(300, 300)).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        a.json()["result"]["renditions"].as_array().unwrap().len(),
        1
    );
    let g = rig
        .http(&base, get_with(&format!("{URL}&format=webp"), None, None))
        .await;
    assert_eq!(g.code(), "RenditionNotFound");
    let g = rig
        .http(&base, get_with(URL, Some("image/webp"), None))
        .await;
    assert_eq!(
        (sniff(&g.body), g.header("vary")),
        ("png", None),
        "one format: nothing to negotiate"
    );
    assert_eq!(
        thumbnail_blobs(&rig),
        1,
        "the replaced set's blobs are deleted"
    );

    // Deleted: no blob left.
    let d = rig.http(&base, delete(URL, Some(&rw()))).await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(thumbnail_blobs(&rig), 0);
    let m = rig
        .http(
            &base,
            get_with(
                "/v1/thumbnails/set/meta?environment=development",
                None,
                None,
            ),
        )
        .await;
    assert_eq!(m.code(), "ThumbnailNotFound");
}

#[tokio::test]
async fn an_unknown_profile_is_refused_before_anything_is_stored() {
    let rig = rig_with_profiles(WEB).await;
    let base = rig.serve_http().await;
    let a = rig
        .http(
            &base,
            create(
                &post(Some("mobile")),
                Some(&rw()),
                Some("image/png"),
                png(400, 300),
            ),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.code(), "InvalidQueryParameter");
    assert_eq!(a.json()["error"]["target"], "profile");

    let json = |body: &str| {
        create(
            &post(None),
            Some(&rw()),
            Some("application/json"),
            body.as_bytes().to_vec(),
        )
    };
    let a = rig
        .http(
            &base,
            json(r#"{"url": "https://example.com/a.png", "profile": "mobile"}"#),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "InvalidQueryParameter".to_owned())
    );
    let a = rig
        .http(
            &base,
            json(r#"{"url": "https://example.com/a.png", "profile": 3}"#),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "InvalidRequestBody".to_owned())
    );
    let a = rig
        .http(
            &base,
            create(
                &post(Some("web")),
                Some(&rw()),
                Some("application/json"),
                br#"{"url": "https://example.com/a.png", "profile": "default"}"#.to_vec(),
            ),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "query and body disagree");

    // Nothing was recorded.
    let jobs = rig
        .http(
            &base,
            get_with("/v1/jobs?environment=development", None, None),
        )
        .await;
    assert_eq!(
        jobs.json()["items"].as_array().map(Vec::len),
        Some(0),
        "{:?}",
        jobs.body
    );

    // The JSON form with a known profile is accepted (202: a URL source answers at once).
    let a = rig
        .http(
            &base,
            json(r#"{"url": "https://example.com/a.png", "profile": "web"}"#),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Polls `/meta` until no rendition is pending; returns it.
async fn settled_meta(rig: &Rig, base: &str) -> serde_json::Value {
    for _ in 0..200 {
        let meta = rig
            .http(
                base,
                get_with(
                    "/v1/thumbnails/set/meta?environment=development",
                    None,
                    None,
                ),
            )
            .await
            .json();
        let pending = meta["renditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["status"] == "pending");
        if !pending {
            return meta;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("renditions still pending after 10 s");
}

#[tokio::test]
async fn avif_renditions_follow_the_job_and_are_then_negotiated() {
    let rig = rig_with_profiles("web=160:webp,160:avif,330:avif,330:png").await;
    let _worker = rig.run_worker();
    let base = rig.serve_http().await;
    let a = create_set(&rig, &base, Some("web"), png(400, 300)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let result = &a.json()["result"];
    // The job answered without waiting for the AVIF encoder.
    let statuses: Vec<(&str, &str)> = result["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["format"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("webp", "ready"),
            ("avif", "pending"),
            ("avif", "pending"),
            ("png", "ready")
        ]
    );
    assert!(
        result["renditions"][1]["etag"].is_null(),
        "no ETag before it exists"
    );
    assert!(
        result["srcset"]["image/avif"].is_null(),
        "srcset lists ready renditions only"
    );

    let meta = settled_meta(&rig, &base).await;
    for r in meta["renditions"].as_array().unwrap() {
        assert_eq!(r["status"], "ready", "{r}");
        let g = rig
            .http(&base, get_with(r["url"].as_str().unwrap(), None, None))
            .await;
        assert_eq!(g.status, StatusCode::OK);
        assert_eq!(g.header("etag"), r["etag"].as_str());
        if r["format"] == "avif" {
            assert_eq!(&g.body[4..12], b"ftypavif");
            assert_eq!(g.header("content-type"), Some("image/avif"));
        }
    }
    assert_eq!(
        meta["srcset"]["image/avif"],
        format!("{URL}&size=160&format=avif 160w, {URL}&size=330&format=avif 330w")
    );
    let browser = "image/avif,image/webp,*/*;q=0.8";
    let g = rig.http(&base, get_with(URL, Some(browser), None)).await;
    assert_eq!(
        (g.header("content-type"), g.header("vary")),
        (Some("image/avif"), Some("Accept"))
    );
    let g = rig
        .http(
            &base,
            get_with(&format!("{URL}&size=100"), Some(browser), None),
        )
        .await;
    assert_eq!(g.header("content-type"), Some("image/avif"));
    let g = rig
        .http(
            &base,
            get_with(&format!("{URL}&size=100"), Some("image/webp"), None),
        )
        .await;
    assert_eq!(g.header("content-type"), Some("image/webp"));
    // The sources the lane encoded from are gone; the set's blobs remain.
    assert!(
        !rig.dir
            .path()
            .join("blobs")
            .join("sources")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
    );
    assert_eq!(thumbnail_blobs(&rig), 4);
    // Its status reads the same as /meta (the job's record was updated too).
    let status = rig
        .http(
            &base,
            get_with(
                &format!("/v1/status/{}", a.json()["id"].as_str().unwrap()),
                None,
                None,
            ),
        )
        .await
        .json();
    assert_eq!(status["result"]["renditions"], meta["renditions"]);
}

fn respond_async(uri: &str, image: Vec<u8>) -> Request<Body> {
    Request::post(uri)
        .header("authorization", rw())
        .header("content-type", "image/png")
        .header("prefer", "respond-async")
        .body(Body::from(image))
        .unwrap()
}

#[tokio::test]
async fn a_replace_serves_the_old_set_until_it_succeeds_and_removal_takes_every_blob() {
    let rig = rig_with_profiles(WEB).await;
    let base = rig.serve_http().await;
    let a = rig
        .http(&base, respond_async(&post(Some("web")), png(400, 300)))
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    rig.worker.drain().await;
    let first = rig
        .http(&base, get_with(URL, Some("image/webp"), None))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let old_tag = first.header("etag").unwrap().to_owned();

    // The replace is accepted; until a worker runs it, the old set is what is served.
    let a = rig
        .http(&base, respond_async(&post(Some("web")), png(300, 400)))
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let during = rig
        .http(&base, get_with(URL, Some("image/webp"), None))
        .await;
    assert_eq!(during.header("etag"), Some(old_tag.as_str()));
    assert_eq!(dimensions(&during.body), (330, 248));
    rig.worker.drain().await;
    let after = rig
        .http(&base, get_with(URL, Some("image/webp"), None))
        .await;
    assert_ne!(after.header("etag"), Some(old_tag.as_str()));
    assert_eq!(dimensions(&after.body), (248, 330));
    assert_eq!(thumbnail_blobs(&rig), 4, "the old set's blobs went with it");

    // The last context's removal deletes the set's every blob.
    let put = Request::put("/v1/contexts/page?environment=development")
        .header("authorization", rw())
        .header("content-type", "application/json")
        .body(Body::from(r#"{"thumbnailId": "set"}"#))
        .unwrap();
    assert_eq!(rig.http(&base, put).await.status, StatusCode::CREATED);
    let d = rig
        .http(
            &base,
            delete("/v1/contexts/page?environment=development", Some(&rw())),
        )
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(
        rig.http(&base, get_with(URL, None, None)).await.code(),
        "ThumbnailNotFound"
    );
    assert_eq!(thumbnail_blobs(&rig), 0);

    // And a DELETE of a set does too.
    let a = rig
        .http(&base, respond_async(&post(Some("web")), png(400, 300)))
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    rig.worker.drain().await;
    assert_eq!(thumbnail_blobs(&rig), 4);
    let d = rig.http(&base, delete(URL, Some(&rw()))).await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    assert_eq!(thumbnail_blobs(&rig), 0);
}

#[tokio::test]
async fn each_environment_may_have_its_own_default_profile() {
    let mut options = thumbd_api::ApiOptions::default();
    options.profiles.insert_all(WEB).unwrap();
    options
        .profiles
        .set_default_for("production", "web")
        .unwrap();
    let rig = rig_with(
        thumbd_api::Auth::hs256(&secrecy::SecretString::from(SECRET)),
        options,
    )
    .await;
    let _worker = rig.run_worker();
    for (environment, count) in [("production", 4), ("development", 1)] {
        let uri = format!("/v1/thumbnails?thumbnailId=env&environment={environment}");
        let a = rig
            .call(create(&uri, Some(&rw()), Some("image/png"), png(400, 300)))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        let renditions = a.json()["result"]["renditions"].as_array().unwrap().len();
        assert_eq!(renditions, count, "{environment}");
    }
}
