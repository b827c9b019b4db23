//! Per-client rate limiting (`THUMBD_RATE_LIMIT`): N requests per second with a
//! burst of 2N, per client — the token's subject when the request carries a valid token,
//! else the peer's address. Over the limit: 429 `TooManyRequests` with `Retry-After`.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::request::{Peer, client_id};

/// Forget idle clients every this many checks, so the table stays as small as the set of
/// recently active clients.
const SWEEP_EVERY: u64 = 4096;

/// A keyed limiter, or nothing when the limit is 0.
#[derive(Debug)]
pub struct RateLimit {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    checks: AtomicU64,
}

impl RateLimit {
    /// `per_second` requests per second per client, bursts of twice that; 0 turns it off.
    pub fn per_second(per_second: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|n| {
            let burst = n.saturating_mul(NonZeroU32::new(2).expect("2 is not 0"));
            RateLimiter::keyed(Quota::per_second(n).allow_burst(burst))
        });
        RateLimit {
            limiter,
            checks: AtomicU64::new(0),
        }
    }

    /// No limit.
    pub fn off() -> Self {
        Self::per_second(0)
    }

    /// Takes one request from `client`'s allowance; `Err(wait)` when it has none left.
    pub fn check(&self, client: &str) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let key = client.to_owned();
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::off()
    }
}

/// Middleware on the `/v1` routes: counts the request against its client, or answers 429.
pub async fn enforce(
    State(state): State<AppState>,
    peer: Peer,
    request: Request,
    next: Next,
) -> Response {
    let caller = Caller {
        subject: state.auth.subject(request.headers()),
        ..Caller::default()
    };
    let client = client_id(&caller, peer);
    match state.rate_limit.check(&client) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            tracing::info!(%client, "rate limited");
            ApiError::too_many_requests(wait).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_twice_the_rate_then_refusals_per_client() {
        let limit = RateLimit::per_second(5);
        for _ in 0..10 {
            limit.check("a").unwrap();
        }
        let wait = limit.check("a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
        limit
            .check("b")
            .expect("another client has its own allowance");
        assert!(RateLimit::off().check("a").is_ok());
    }
}
