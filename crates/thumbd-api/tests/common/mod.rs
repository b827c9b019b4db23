//! A router over real SQLite and real files, with a worker to drive jobs.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use secrecy::SecretString;
use thumbd_api::{
    ApiOptions, AppState, Auth, Metrics, RateLimit, Scope, ServeOptions, mint_hs256, router,
};
use thumbd_jobs::{Environment, FsBlobStore, JobEvents, SqliteDb, SqliteJobQueue, SqliteMetaStore};
use thumbd_worker::{Worker, WorkerOptions};
use tower::ServiceExt as _;

pub const SECRET: &str = "test-secret-0123456789abcdef";

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub db: SqliteDb,
    pub state: AppState,
    pub worker: Arc<Worker>,
    /// What the worker announces finished jobs on, and the intake listens to.
    pub events: JobEvents,
    /// The webhook lane of the queue.
    pub webhook_queue: Arc<dyn thumbd_jobs::JobQueue>,
    /// Makes the renditions jobs defer (AVIF), from the queue's rendition lane.
    pub renditions: Arc<thumbd_worker::RenditionLane>,
}

pub async fn rig() -> Rig {
    rig_with(
        Auth::hs256(&SecretString::from(SECRET)),
        ApiOptions::default(),
    )
    .await
}

/// A rig whose API and worker accept `formats` (`accept_formats`, e.g. `png,jpeg,gif`).
pub async fn rig_accepting(formats: &str) -> Rig {
    let accept_formats = formats.parse().unwrap();
    let mut options = ApiOptions::default();
    options.spec_limits.accept_formats = accept_formats;
    let mut spec = thumbcore::ThumbSpec::default();
    spec.limits.accept_formats = accept_formats;
    rig_parts(Auth::hs256(&SecretString::from(SECRET)), options, spec).await
}

pub async fn rig_with(auth: Auth, options: ApiOptions) -> Rig {
    rig_parts(auth, options, thumbcore::ThumbSpec::default()).await
}

/// A rig whose API and worker know the profiles of `spec` (as `THUMBD_PROFILES` writes
/// them), besides `default`.
pub async fn rig_with_profiles(spec: &str) -> Rig {
    let mut options = ApiOptions::default();
    options.profiles.insert_all(spec).unwrap();
    rig_parts(
        Auth::hs256(&SecretString::from(SECRET)),
        options,
        thumbcore::ThumbSpec::default(),
    )
    .await
}

async fn rig_parts(auth: Auth, options: ApiOptions, spec: thumbcore::ThumbSpec) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(&dir.path().join("thumbd.db")).await.unwrap();
    let queue = Arc::new(SqliteJobQueue::unlocked(
        db.clone(),
        Duration::from_secs(30),
    ));
    let webhook_queue: Arc<dyn thumbd_jobs::JobQueue> =
        Arc::new(queue.lane(thumbd_jobs::WEBHOOK_LANE));
    let store = Arc::new(SqliteMetaStore::new(db.clone()));
    let blobs = Arc::new(FsBlobStore::open(dir.path().join("blobs")).unwrap());
    let events = JobEvents::new();
    let rendition_queue: Arc<dyn thumbd_jobs::JobQueue> =
        Arc::new(queue.lane(thumbd_jobs::RENDITION_LANE));
    let renditions = Arc::new(thumbd_worker::RenditionLane::new(
        rendition_queue.clone(),
        store.clone(),
        blobs.clone(),
        spec.clone(),
    ));
    let worker = Arc::new(
        Worker::new(
            queue.clone(),
            store.clone(),
            blobs.clone(),
            events.clone(),
            WorkerOptions {
                lease_wait: Duration::from_millis(50),
                spec,
                profiles: options.profiles.clone(),
                ..WorkerOptions::default()
            },
        )
        .with_rendition_lane(rendition_queue),
    );
    let intake = thumbd_jobs::Intake::new(thumbd_jobs::IntakeParts {
        store: store.clone(),
        queue: queue.clone(),
        webhook_queue: webhook_queue.clone(),
        blobs: blobs.clone(),
        events: events.clone(),
        local_worker: None,
    });
    let state = AppState {
        store: store.clone(),
        queue,
        blobs,
        auth: Arc::new(auth),
        options,
        rate_limit: Arc::new(RateLimit::off()),
        metrics: Arc::new(Metrics::default()),
        intake: Arc::new(intake),
        readiness: Default::default(),
    };
    Rig {
        dir,
        db,
        state,
        worker,
        events,
        webhook_queue,
        renditions,
    }
}

pub fn token(scopes: &[Scope], env: Option<Environment>) -> String {
    mint_hs256(
        &SecretString::from(SECRET),
        "tester",
        scopes,
        env,
        Duration::from_secs(600),
    )
}

pub fn rw() -> String {
    format!("Bearer {}", token(&[Scope::Read, Scope::Write], None))
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The stable error code; also checks the error body's shape.
    pub fn code(&self) -> String {
        let j = self.json();
        assert!(j["error"]["message"].is_string(), "{j}");
        j["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no code: {j}"))
            .to_owned()
    }

    pub fn detail_code(&self) -> String {
        self.json()["error"]["details"][0]["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl Rig {
    /// Gives the API a worker of its own process (as `thumbd serve` does), which runs a
    /// waiting create's job at once.
    pub fn set_local_worker(&mut self, local: Arc<dyn thumbd_jobs::LocalWorker>) {
        let s = &self.state;
        self.state.intake = Arc::new(thumbd_jobs::Intake::new(thumbd_jobs::IntakeParts {
            store: s.store.clone(),
            queue: s.queue.clone(),
            webhook_queue: self.webhook_queue.clone(),
            blobs: s.blobs.clone(),
            events: self.events.clone(),
            local_worker: Some(local),
        }));
    }

    pub async fn call(&self, req: Request<Body>) -> Answer {
        let response: Response<Body> = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Serves the router (as it is in `self.state` now) on a loopback port for the rest of
    /// the test; returns its base URL, for [`Rig::http`].
    pub async fn serve_http(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(thumbd_api::serve(
            listener,
            router(self.state.clone()),
            ServeOptions::default(),
            tokio_util::sync::CancellationToken::new(),
        ));
        base
    }

    /// Sends `req` over real HTTP to the server at `base` (see [`Rig::serve_http`]).
    pub async fn http(&self, base: &str, req: Request<Body>) -> Answer {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.unwrap().to_bytes().to_vec();
        let url = format!("{base}{}", parts.uri);
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into();
            let mut request = ureq::http::Request::builder()
                .method(parts.method.as_str())
                .uri(&url);
            for (name, value) in &parts.headers {
                request = request.header(name.as_str(), value.as_bytes());
            }
            let response = agent.run(request.body(body).unwrap()).unwrap();
            let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
            let mut headers = axum::http::HeaderMap::new();
            for (name, value) in response.headers() {
                headers.append(
                    axum::http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
                    axum::http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
                );
            }
            let body = response
                .into_body()
                .with_config()
                .limit(64 << 20)
                .read_to_vec()
                .unwrap();
            Answer {
                status,
                headers,
                body: bytes::Bytes::from(body),
            }
        })
        .await
        .unwrap()
    }

    /// A worker loop (and its rendition lane) in the background for the rest of the test.
    pub fn run_worker(&self) -> tokio_util::sync::CancellationToken {
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(self.worker.clone().run(stop.clone()));
        tokio::spawn(self.renditions.clone().run(stop.clone()));
        stop
    }
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    let data: Vec<u8> = (0..w * h * 3)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    out
}

pub fn jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let data: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3)
        .map(|i| u8::try_from(i % 200).unwrap())
        .collect();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&data, w, h, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// A GIF of `frames` frames of one colour each (palette: black, red, blue) on a `w`×`h`
/// screen.
pub fn gif(w: u16, h: u16, frames: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut out, w, h, &[0, 0, 0, 255, 0, 0, 0, 0, 255]).unwrap();
        for i in 0..frames {
            let frame = gif::Frame {
                width: w,
                height: h,
                buffer: vec![1 + u8::from(i % 2 == 1); usize::from(w) * usize::from(h)].into(),
                ..gif::Frame::default()
            };
            enc.write_frame(&frame).unwrap();
        }
    }
    out
}

/// A PNG whose header declares `w`×`h` but that has no pixel data.
pub fn png_header(w: u32, h: u32) -> Vec<u8> {
    let full = png(100, 100);
    let mut out = full[..33].to_vec();
    out[16..20].copy_from_slice(&w.to_be_bytes());
    out[20..24].copy_from_slice(&h.to_be_bytes());
    // The CRC no longer matches; probe does not check it, the decoder would.
    out.extend_from_slice(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]);
    out
}

pub fn create(
    uri: &str,
    auth: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Request<Body> {
    let mut r = Request::post(uri);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    r.body(Body::from(body)).unwrap()
}

pub fn get(uri: &str, auth: Option<&str>) -> Request<Body> {
    bodyless(Request::get(uri), auth)
}

pub fn head(uri: &str, auth: Option<&str>) -> Request<Body> {
    bodyless(Request::head(uri), auth)
}

pub fn delete(uri: &str, auth: Option<&str>) -> Request<Body> {
    bodyless(Request::delete(uri), auth)
}

fn bodyless(mut r: axum::http::request::Builder, auth: Option<&str>) -> Request<Body> {
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.body(Body::empty()).unwrap()
}
