//! `thumbd serve`, `thumbd api` and `thumbd worker`: one loop, three roles. `serve` runs the
//! API and its workers in one process; `api` and `worker` split them across processes that
//! share RabbitMQ, the store and the blobs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use thumbd_api::{
    ApiOptions, AppState, Auth, Claims, Metrics, RateLimit, Registry, Scope, ServeOptions,
};
use thumbd_jobs::{Intake, IntakeParts, JobEvents};
use thumbd_worker::{Deliverer, DeliveryOptions, RenditionLane, Worker, WorkerOptions};
use tokio_util::sync::CancellationToken;

use crate::backends::Backends;
use crate::role::Role;
use crate::secret;
use crate::settings::Settings;

/// The authentication policy from settings. With no key configured, `serve` creates a secret
/// in the data dir (or uses the one it created before) and returns it, to print a token
/// with; `api` refuses to start (its processes would not share a secret).
pub fn auth(
    settings: &Settings,
    role: Role,
) -> anyhow::Result<(Auth, Option<secrecy::SecretString>)> {
    if !settings.auth {
        tracing::warn!(
            "AUTHENTICATION IS OFF (THUMBD_AUTH=off): anyone who can reach this port can write and delete thumbnails"
        );
        return Ok((Auth::off(), None));
    }
    let (auth, generated) = if let Some(path) = &settings.jwt_public_key {
        let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let auth = Auth::public_key(settings.jwt_algorithm, &pem).map_err(anyhow::Error::msg)?;
        (auth, None)
    } else if let Some(secret) = &settings.jwt_secret {
        (Auth::hs256(secret), None)
    } else if role == Role::Serve {
        let secret = secret::load_or_create(&settings.data_dir)?;
        (Auth::hs256(&secret), Some(secret))
    } else {
        anyhow::bail!(
            "no token key configured: set THUMBD_JWT_SECRET (the same in every api process) or THUMBD_JWT_PUBLIC_KEY"
        );
    };
    let auth = auth
        .with_public_reads(settings.public_reads)
        .with_tenant_claim(&settings.tenant_claim)
        .with_issuer_and_audience(
            settings.jwt_issuer.as_deref(),
            settings.jwt_audience.as_deref(),
        );
    Ok((auth, generated))
}

/// Runs `role` until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(settings: Settings, role: Role) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    // Before the backends: a configuration error should cost nothing.
    let (auth, generated_secret) = match role {
        Role::Worker => (Auth::off(), None),
        Role::Serve | Role::Api => auth(&settings, role)?,
    };
    let backends = Backends::open(&settings, role).await?;
    let events = JobEvents::new();
    if role != Role::Worker {
        backends.forward_finished(&events);
    }

    let mut registry = Registry::with_prefix("thumbd");
    let worker_metrics = thumbd_worker::WorkerMetrics::default();
    if role != Role::Api {
        worker_metrics.register(&mut registry);
    }
    let worker = (role != Role::Api).then(|| {
        Arc::new(
            Worker::new(
                backends.queue.clone(),
                backends.store.clone(),
                backends.blobs.clone(),
                events.clone(),
                WorkerOptions {
                    concurrency: settings.workers,
                    prefetch: settings.prefetch,
                    downloads: settings.downloads,
                    downloads_per_tenant: settings.downloads_per_tenant,
                    pixel_budget: settings.pixel_budget,
                    spec: settings.thumb_spec(),
                    profiles: settings.profiles.clone(),
                    fetch: thumbd_fetch::FetchOptions {
                        allow_private: settings.allow_private_sources,
                        max_bytes: settings.max_body_bytes,
                        timeout: settings.source_timeout,
                        ..thumbd_fetch::FetchOptions::default()
                    },
                    metrics: worker_metrics,
                    ..WorkerOptions::default()
                },
            )
            .with_replies(thumbd_api::status_body)
            .with_rendition_lane(backends.rendition_queue.clone()),
        )
    });
    let rendition_lane = (role != Role::Api).then(|| {
        Arc::new(RenditionLane::new(
            backends.rendition_queue.clone(),
            backends.store.clone(),
            backends.blobs.clone(),
            settings.thumb_spec(),
        ))
    });
    let deliverer = (role != Role::Api).then(|| {
        let metrics = thumbd_worker::DeliveryMetrics::default();
        metrics.register(&mut registry);
        Arc::new(Deliverer::new(
            backends.webhook_queue.clone(),
            backends.store.clone(),
            thumbd_api::status_body,
            DeliveryOptions {
                concurrency: settings.webhook_concurrency,
                schedule: settings.webhook_retry_schedule.clone(),
                fetch: thumbd_fetch::FetchOptions {
                    allow_private: settings.allow_private_webhooks,
                    ..DeliveryOptions::default().fetch
                },
                metrics,
                ..DeliveryOptions::default()
            },
        ))
    });
    let intake = Arc::new(Intake::new(IntakeParts {
        store: backends.store.clone(),
        queue: backends.queue.clone(),
        webhook_queue: backends.webhook_queue.clone(),
        blobs: backends.blobs.clone(),
        events,
        // `serve` only: a worker of another process cannot take a request's bytes.
        local_worker: match (role, &worker) {
            (Role::Serve, Some(worker)) => Some(worker.local()),
            _ => None,
        },
    }));
    let state = AppState {
        store: backends.store.clone(),
        queue: backends.queue.clone(),
        blobs: backends.blobs.clone(),
        auth: Arc::new(auth),
        options: ApiOptions {
            spec_limits: settings.limits(),
            default_wait: settings.wait,
            max_wait: settings.max_wait,
            upload_ttl: settings.upload_ttl,
            url_signer: settings
                .url_signing_key
                .clone()
                .map(|key| thumbd_api::UrlSigner::new(key, settings.url_ttl)),
            allow_private_webhooks: settings.allow_private_webhooks,
            profiles: settings.profiles.clone(),
            ..ApiOptions::default()
        },
        rate_limit: Arc::new(RateLimit::per_second(settings.rate_limit)),
        metrics: Arc::new(Metrics::new(registry)),
        intake: intake.clone(),
        readiness: Default::default(),
    };
    let router = match role {
        Role::Worker => thumbd_api::health_router(state),
        Role::Serve | Role::Api => thumbd_api::router(state),
    };

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    match role {
        Role::Serve => println!(
            "thumbd listening on http://{addr} (data in {}, {} workers)",
            settings.data_dir.display(),
            settings.workers
        ),
        Role::Api => println!("thumbd api listening on http://{addr}"),
        Role::Worker => println!(
            "thumbd worker: {} image threads, health on http://{addr}/healthz",
            settings.workers
        ),
    }
    println!("  {}", backends.description);
    // Only while `serve` uses the secret it generated itself: a configured key belongs to
    // whoever configured it, and a token on stdout would end up in their logs.
    if let Some(secret) = &generated_secret {
        let mut claims = Claims::new(
            "thumbd-serve",
            &[Scope::Read, Scope::Write, Scope::Webhooks],
            None,
            Duration::from_secs(30 * 24 * 3600),
        );
        claims.iss = settings.jwt_issuer.clone();
        claims.aud = settings.jwt_audience.clone().map(Into::into);
        let token = thumbd_api::mint_hs256_claims(secret, &claims);
        println!("token (thumbnails:read thumbnails:write webhooks:manage, 30 days): {token}");
        println!("  more: thumbd token --scope thumbnails:write [--environment production]");
    }

    let http_stop = CancellationToken::new();
    let work_stop = CancellationToken::new();
    let http = tokio::spawn(thumbd_api::serve(
        listener,
        router,
        ServeOptions::default(),
        http_stop.clone(),
    ));
    let workers = worker.map(|w| tokio::spawn(w.run(work_stop.clone())));
    let deliveries = deliverer.map(|d| tokio::spawn(d.run(work_stop.clone())));
    let renditions = rendition_lane.map(|r| tokio::spawn(r.run(work_stop.clone())));
    // Purges in every process; the sweep (republishing, expired uploads) where jobs are
    // accepted.
    let upkeep = tokio::spawn({
        let (intake, stop) = (intake.clone(), work_stop.clone());
        let retention = settings.job_retention;
        async move {
            intake
                .upkeep(retention, role != Role::Worker, stop.cancelled_owned())
                .await;
        }
    });

    shutdown_signal().await;
    tracing::info!("shutting down: no new requests; finishing requests and jobs in flight");
    // HTTP first (requests may be waiting on jobs), then the workers.
    http_stop.cancel();
    let _ = http.await;
    work_stop.cancel();
    if let Some(workers) = workers {
        let _ = workers.await;
    }
    if let Some(deliveries) = deliveries {
        let _ = deliveries.await;
    }
    if let Some(renditions) = renditions {
        let _ = renditions.await;
    }
    let _ = upkeep.await;
    backends.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
