//! Signing events as the Standard Webhooks specification says (<https://www.standardwebhooks.com>):
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`, keyed
//! with the base64 part of a `whsec_…` secret. Several signatures are separated by spaces: during a
//! secret's rotation both secrets sign, and a receiver holding either accepts.
//!
//! Chosen over Stripe's `t=…,v1=…` because it is an open specification with verifying libraries in
//! every common language (`standardwebhooks`, `svix`), and it carries the event id in what is signed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A new secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    format!("{PREFIX}{}", STANDARD.encode(rand::random::<[u8; 32]>()))
}

fn key(secret: &str) -> Vec<u8> {
    let encoded = secret.strip_prefix(PREFIX).unwrap_or(secret);
    // Secrets are made by `new_secret`; one that is not base64 is used as it is.
    STANDARD
        .decode(encoded)
        .unwrap_or_else(|_| encoded.as_bytes().to_vec())
}

fn mac(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// One signature: `v1,<base64>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1,{}",
        STANDARD.encode(mac(secret, id, timestamp, body).finalize().into_bytes())
    )
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether one of the header's `v1` signatures is `secret`'s, compared in constant time. Receivers
/// also check the timestamp's age; this checks the signature only.
pub fn verify(secret: &str, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    header.split(' ').any(|sig| {
        sig.strip_prefix("v1,")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .is_some_and(|bytes| {
                mac(secret, id, timestamp, body)
                    .verify_slice(&bytes)
                    .is_ok()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The specification's published vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn signs_the_published_vector() {
        assert_eq!(
            sign(SECRET, ID, TS, BODY),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_rotation_signs_with_both_secrets_and_either_verifies() {
        let new = new_secret();
        let h = header(&[&new, SECRET], ID, TS, BODY);
        assert!(verify(SECRET, ID, TS, BODY, &h));
        assert!(verify(&new, ID, TS, BODY, &h));
        assert!(!verify(&new_secret(), ID, TS, BODY, &h));
        assert!(!verify(SECRET, ID, TS + 1, BODY, &h));
        assert!(!verify(SECRET, "msg_other", TS, BODY, &h));
        assert!(!verify(SECRET, ID, TS, b"{\"test\": 2432232315}", &h));
        assert!(!verify(SECRET, ID, TS, BODY, "v1,junk v2,abc"));
    }

    #[test]
    fn new_secrets_are_32_random_bytes() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(key(&a).len(), 32);
    }
}
