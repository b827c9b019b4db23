//! Standard Webhooks signatures: `v1,` and the base64 HMAC-SHA256, keyed by the secret's
//! bytes, of `{webhook-id}.{webhook-timestamp}.{body}`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::error::{Error, Result};

/// An endpoint's signing secret: `whsec_` and the base64 of 24–64 random bytes (what the
/// Standard Webhooks libraries accept). `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    text: String,
    key: Vec<u8>,
}

impl WebhookSecret {
    const PREFIX: &'static str = "whsec_";

    /// A new random secret (24 bytes).
    pub fn generate() -> Self {
        let key: [u8; 24] = rand::random();
        WebhookSecret {
            text: format!("{}{}", Self::PREFIX, STANDARD.encode(key)),
            key: key.to_vec(),
        }
    }

    /// Checks a secret a client chose.
    pub fn parse(s: &str) -> Result<Self> {
        let invalid = || {
            Error::invalid(
                "secret",
                "must be \"whsec_\" and the base64 of 24 to 64 bytes",
            )
        };
        let encoded = s.strip_prefix(Self::PREFIX).ok_or_else(invalid)?;
        let key = STANDARD.decode(encoded).map_err(|_| invalid())?;
        if !(24..=64).contains(&key.len()) {
            return Err(invalid());
        }
        Ok(WebhookSecret {
            text: s.to_owned(),
            key,
        })
    }

    /// The secret as given to the client (`whsec_…`).
    pub fn expose(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// The `webhook-signature` header for a message.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.key).expect("HMAC takes any key");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn matches_the_reference_signature() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_checked_and_not_shown() {
        let s = WebhookSecret::generate();
        assert_eq!(WebhookSecret::parse(s.expose()).unwrap(), s);
        assert!(!format!("{s:?}").contains("whsec"));
        for bad in [
            "",
            "whsec_",
            "whsec_!!!",
            "sk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_YWJj",
        ] {
            assert!(WebhookSecret::parse(bad).is_err(), "{bad:?}");
        }
    }
}
