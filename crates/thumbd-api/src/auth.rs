//! Bearer JWT authentication and scopes (README: Authentication).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, header};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use thumbd_jobs::{Environment, Tenant};

use crate::error::ApiError;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `thumbnails:read`: GET thumbnails and job status.
    Read,
    /// `thumbnails:write`: create, replace, delete.
    Write,
    /// `webhooks:manage`: register, read and delete webhook endpoints, read deliveries.
    Webhooks,
}

impl Scope {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "thumbnails:read",
            Scope::Write => "thumbnails:write",
            Scope::Webhooks => "webhooks:manage",
        }
    }
}

/// The claims thumbd reads. `exp` is required; `scope` is space-separated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The client (rate limits and idempotency keys are per subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// When set, the token only works in this environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// Not before, seconds since the epoch: refused until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issuer: checked when the API is configured with one (`jwt_issuer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience, a string or an array of strings: checked when the API is configured with
    /// one (`jwt_audience`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
    /// Every other claim, among them the tenant's (named by `tenant_claim`, `tenant` by
    /// default; README "Tenants").
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Claims {
    /// Claims for `subject` with `scopes`, valid from now for `ttl`.
    pub fn new(
        subject: &str,
        scopes: &[Scope],
        environment: Option<Environment>,
        ttl: Duration,
    ) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Claims {
            sub: Some(subject.into()),
            exp: now.saturating_add(ttl.as_secs()),
            iat: Some(now),
            scope: scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            environment,
            nbf: None,
            iss: None,
            aud: None,
            other: serde_json::Map::new(),
        }
    }
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    /// The token's subject; `None` with auth off or a token without `sub`.
    pub subject: Option<String>,
    /// Whose data the request may see: the token's tenant claim, else `default` (also with
    /// auth off or a public read).
    pub tenant: Tenant,
    /// Let in without a token (auth off, or a public read): what it is answered may be
    /// cached where anyone can fetch it.
    pub anonymous: bool,
}

/// The claim that names the tenant unless configured otherwise (`tenant_claim`).
pub const TENANT_CLAIM: &str = "tenant";

enum Mode {
    Off,
    Jwt {
        key: Box<DecodingKey>,
        validation: Box<Validation>,
    },
}

/// The authentication policy of an API process.
pub struct Auth {
    mode: Mode,
    public_reads: bool,
    tenant_claim: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.mode {
            Mode::Off => "off",
            Mode::Jwt { .. } => "jwt",
        };
        f.debug_struct("Auth")
            .field("mode", &mode)
            .field("public_reads", &self.public_reads)
            .finish()
    }
}

fn validation(alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg); // pinned: a token signed with any other alg is refused
    v.set_required_spec_claims(&["exp"]);
    v.leeway = 30;
    v.validate_nbf = true;
    v.validate_aud = false;
    v
}

/// A public-key algorithm for tokens signed elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKeyAlgorithm {
    /// RS256 with an RSA public key (PEM).
    Rs256,
    /// EdDSA with an Ed25519 public key (PEM).
    EdDsa,
}

impl Auth {
    /// No authentication at all: every request is allowed (`THUMBD_AUTH=off`).
    pub fn off() -> Self {
        Auth {
            mode: Mode::Off,
            public_reads: true,
            tenant_claim: TENANT_CLAIM.into(),
        }
    }

    /// HS256 tokens signed with `secret`.
    pub fn hs256(secret: &SecretString) -> Self {
        Auth {
            mode: Mode::Jwt {
                key: Box::new(DecodingKey::from_secret(secret.expose_secret().as_bytes())),
                validation: Box::new(validation(Algorithm::HS256)),
            },
            public_reads: false,
            tenant_claim: TENANT_CLAIM.into(),
        }
    }

    /// RS256 or EdDSA tokens, checked with a PEM public key.
    pub fn public_key(alg: PublicKeyAlgorithm, pem: &[u8]) -> Result<Self, String> {
        let (key, alg) = match alg {
            PublicKeyAlgorithm::Rs256 => (DecodingKey::from_rsa_pem(pem), Algorithm::RS256),
            PublicKeyAlgorithm::EdDsa => (DecodingKey::from_ed_pem(pem), Algorithm::EdDSA),
        };
        let key = key.map_err(|e| format!("cannot read the public key: {e}"))?;
        Ok(Auth {
            mode: Mode::Jwt {
                key: Box::new(key),
                validation: Box::new(validation(alg)),
            },
            public_reads: false,
            tenant_claim: TENANT_CLAIM.into(),
        })
    }

    /// Requires the `iss` claim to be `issuer` (and, with `Some`, an `aud` claim naming
    /// `audience`); `None` leaves that claim unchecked.
    pub fn with_issuer_and_audience(
        mut self,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Self {
        if let Mode::Jwt { validation, .. } = &mut self.mode {
            if let Some(issuer) = issuer {
                validation.set_issuer(&[issuer]);
                validation.required_spec_claims.insert("iss".into());
            }
            if let Some(audience) = audience {
                validation.set_audience(&[audience]);
                validation.validate_aud = true;
                validation.required_spec_claims.insert("aud".into());
            }
        }
        self
    }

    /// Reads the tenant from claim `name` instead of `tenant`.
    pub fn with_tenant_claim(mut self, name: &str) -> Self {
        self.tenant_claim = name.into();
        self
    }

    /// Lets reads (GET thumbnails, status) through without a token.
    pub fn with_public_reads(mut self, public: bool) -> Self {
        self.public_reads = public;
        self
    }

    /// Whether authentication is off.
    pub fn is_off(&self) -> bool {
        matches!(self.mode, Mode::Off)
    }

    /// The subject of the request's token if it carries a valid one (signature, `exp`),
    /// whatever its scopes, as `TENANT/SUBJECT` (tenants name their clients independently);
    /// for rate limiting. `None` with auth off.
    pub fn subject(&self, headers: &HeaderMap) -> Option<String> {
        let Mode::Jwt { key, validation } = &self.mode else {
            return None;
        };
        let token = headers
            .get(header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .split_once(' ')
            .filter(|(kind, _)| kind.eq_ignore_ascii_case("bearer"))?
            .1
            .trim();
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
            .ok()?
            .claims;
        let subject = claims.sub?;
        let tenant = claims
            .other
            .get(&self.tenant_claim)
            .and_then(serde_json::Value::as_str)
            .unwrap_or(Tenant::DEFAULT);
        // A tenant never contains `/`: no subject of one tenant reads as another's.
        Some(format!("{tenant}/{subject}"))
    }

    /// Checks the request's bearer token for `scope` in `environment` (when known); with
    /// `public_reads`, a read without a token is let in as the tenant `default`.
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        scope: Scope,
        environment: Option<Environment>,
    ) -> Result<Caller, ApiError> {
        self.check(headers, scope, environment, self.public_reads)
    }

    /// [`authorize`](Self::authorize), but a token is needed even with `public_reads` (for
    /// listings: which ids exist is the caller's business).
    pub fn authorize_token(
        &self,
        headers: &HeaderMap,
        scope: Scope,
        environment: Option<Environment>,
    ) -> Result<Caller, ApiError> {
        self.check(headers, scope, environment, false)
    }

    fn check(
        &self,
        headers: &HeaderMap,
        scope: Scope,
        environment: Option<Environment>,
        public_reads: bool,
    ) -> Result<Caller, ApiError> {
        let anonymous = Caller {
            anonymous: true,
            ..Caller::default()
        };
        let (key, validation) = match &self.mode {
            Mode::Off => return Ok(anonymous),
            Mode::Jwt { key, validation } => (key, validation),
        };
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            if scope == Scope::Read && public_reads {
                return Ok(anonymous);
            }
            return Err(ApiError::no_auth_header());
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (kind, token) = v.split_once(' ')?;
                kind.eq_ignore_ascii_case("bearer").then_some(token.trim())
            })
            .ok_or_else(|| {
                ApiError::invalid_token("the Authorization header must be `Bearer <token>`")
            })?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation)
            .map_err(|e| ApiError::invalid_token(format!("the token is not valid: {e}")))?
            .claims;
        if !claims.scope.split(' ').any(|s| s == scope.as_str()) {
            return Err(ApiError::forbidden(format!(
                "the token lacks the scope {}",
                scope.as_str()
            )));
        }
        if let (Some(allowed), Some(wanted)) = (claims.environment, environment)
            && allowed != wanted
        {
            return Err(ApiError::forbidden(format!(
                "the token is limited to the {allowed} environment"
            )));
        }
        let tenant = match claims.other.get(&self.tenant_claim) {
            None | Some(serde_json::Value::Null) => Tenant::default(),
            Some(serde_json::Value::String(t)) => Tenant::parse(t).map_err(|e| {
                ApiError::invalid_token(format!("the token's {} claim: {e}", self.tenant_claim))
            })?,
            Some(_) => {
                return Err(ApiError::invalid_token(format!(
                    "the token's {} claim must be a string",
                    self.tenant_claim
                )));
            }
        };
        // For the access log line of this request (see `with_common_layers`).
        tracing::Span::current().record("tenant", tracing::field::display(&tenant));
        Ok(Caller {
            subject: claims.sub,
            tenant,
            anonymous: false,
        })
    }
}

/// Mints an HS256 token (for `thumbd token` and the token `serve` prints at start-up).
pub fn mint_hs256(
    secret: &SecretString,
    subject: &str,
    scopes: &[Scope],
    environment: Option<Environment>,
    ttl: Duration,
) -> String {
    mint_hs256_claims(secret, &Claims::new(subject, scopes, environment, ttl))
}

/// Mints an HS256 token carrying `claims`.
pub fn mint_hs256_claims(secret: &SecretString, claims: &Claims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.expose_secret().as_bytes()),
    )
    .expect("HS256 encoding cannot fail")
}
