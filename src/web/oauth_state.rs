//! The OAuth `state` parameter: signed, expiring, and checkable without the session.
//!
//! WeChat's browser sometimes loses cookies between the authorize redirect and the callback
//! (docs/wechat.md §6.2), so the state carries its own proof: `hex(version ‖ expiry ‖ nonce ‖ scope ‖ tag)`,
//! where the tag is HMAC-SHA256 over the rest and the `next` path, truncated to 16 bytes. `next` itself
//! travels in the callback URL (`redirect_uri`), bound to the state by the tag. Hex keeps the state
//! within `[a-zA-Z0-9]`; it is 84 characters, under WeChat's 128-byte limit. Nothing is stored when a
//! state is issued: single use is recorded by nonce when the callback claims it.

use hmac::{Hmac, KeyInit, Mac};

use sha2::Sha256;

const VERSION: u8 = 2;
const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 16;
const PAYLOAD_LEN: usize = 1 + 8 + NONCE_LEN + 1;
/// The scopes a state can carry, by their byte.
const SCOPES: [&str; 2] = ["snsapi_userinfo", "snsapi_base"];
/// How long a follower has between the authorize redirect and the callback.
pub(crate) const STATE_LIFETIME_SECS: i64 = 600;

/// Signs and checks states with the server's key.
#[derive(Clone)]
pub struct StateSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for StateSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSigner(***)")
    }
}

/// A state that verified: its nonce (the database key), when it expires, the scope asked for and where
/// the follower goes afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedState {
    pub nonce: String,
    pub expires_at: i64,
    pub scope: &'static str,
    pub next: String,
}

/// Why a state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the state is missing")]
    Missing,
    #[error("the state is not one of ours")]
    Invalid,
    #[error("the state has expired")]
    Expired,
}

impl StateSigner {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length")
    }

    /// A fresh state for `scope` and `next`, expiring `STATE_LIFETIME_SECS` after `now`.
    pub fn issue(&self, now: i64, scope: &str, next: &str) -> (String, VerifiedState) {
        let mut payload = [0u8; PAYLOAD_LEN];
        let expires_at = now + STATE_LIFETIME_SECS;
        let scope_index = SCOPES.iter().position(|s| *s == scope).unwrap_or(0);
        payload[0] = VERSION;
        payload[1..9].copy_from_slice(&expires_at.to_be_bytes());
        rand::fill(&mut payload[9..9 + NONCE_LEN]);
        payload[PAYLOAD_LEN - 1] = scope_index as u8;
        let tag = self.tag(&payload, next);
        let state = format!("{}{}", hex::encode(payload), hex::encode(&tag[..TAG_LEN]));
        let verified = VerifiedState {
            nonce: hex::encode(&payload[9..9 + NONCE_LEN]),
            expires_at,
            scope: SCOPES[scope_index],
            next: next.to_owned(),
        };
        (state, verified)
    }

    fn tag(&self, payload: &[u8], next: &str) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(payload);
        mac.update(next.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Checks the signature over the state and `next` (in constant time), then the expiry.
    pub fn verify(
        &self,
        state: Option<&str>,
        next: &str,
        now: i64,
    ) -> Result<VerifiedState, StateError> {
        let state = state.filter(|s| !s.is_empty()).ok_or(StateError::Missing)?;
        if state.len() != 2 * (PAYLOAD_LEN + TAG_LEN) {
            return Err(StateError::Invalid);
        }
        let bytes = hex::decode(state).map_err(|_| StateError::Invalid)?;
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        let mut mac = self.mac();
        mac.update(payload);
        mac.update(next.as_bytes());
        mac.verify_truncated_left(tag)
            .map_err(|_| StateError::Invalid)?;
        let scope = SCOPES
            .get(usize::from(payload[PAYLOAD_LEN - 1]))
            .ok_or(StateError::Invalid)?;
        if payload[0] != VERSION {
            return Err(StateError::Invalid);
        }
        let expires_at = i64::from_be_bytes(payload[1..9].try_into().expect("8 bytes"));
        if now > expires_at {
            return Err(StateError::Expired);
        }
        Ok(VerifiedState {
            nonce: hex::encode(&payload[9..9 + NONCE_LEN]),
            expires_at,
            scope,
            next: next.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_state_verifies_until_it_expires() {
        let signer = StateSigner::new([7; 32]);
        let (state, issued) = signer.issue(1_000, "snsapi_base", "/me?tab=1");
        assert!(state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(issued.scope, "snsapi_base");
        assert_eq!(
            signer.verify(Some(&state), "/me?tab=1", 1_000),
            Ok(issued.clone())
        );
        assert_eq!(
            signer.verify(Some(&state), "/me?tab=1", 1_000 + STATE_LIFETIME_SECS),
            Ok(issued)
        );
        assert_eq!(
            signer.verify(Some(&state), "/me?tab=1", 1_001 + STATE_LIFETIME_SECS),
            Err(StateError::Expired)
        );
    }

    #[test]
    fn tampered_foreign_or_missing_states_are_refused() {
        let signer = StateSigner::new([7; 32]);
        let (state, _) = signer.issue(1_000, "snsapi_userinfo", "/me");
        assert_eq!(signer.verify(None, "/me", 1_000), Err(StateError::Missing));
        assert_eq!(
            signer.verify(Some(""), "/me", 1_000),
            Err(StateError::Missing)
        );
        assert_eq!(
            StateSigner::new([8; 32]).verify(Some(&state), "/me", 1_000),
            Err(StateError::Invalid)
        );
        // Another destination than the one signed: refused.
        assert_eq!(
            signer.verify(Some(&state), "/admin", 1_000),
            Err(StateError::Invalid)
        );
        // Pushing the expiry forward, or widening the scope, breaks the tag.
        for byte in [8, PAYLOAD_LEN - 1] {
            let mut forged = hex::decode(&state).unwrap();
            forged[byte] ^= 1;
            assert_eq!(
                signer.verify(Some(&hex::encode(forged)), "/me", 1_000),
                Err(StateError::Invalid)
            );
        }
        for junk in [
            "abc",
            "ZZ",
            &state[..state.len() - 2],
            &format!("{state}00"),
        ] {
            assert_eq!(
                signer.verify(Some(junk), "/me", 1_000),
                Err(StateError::Invalid)
            );
        }
    }

    #[test]
    fn two_states_never_share_a_nonce() {
        let signer = StateSigner::new([7; 32]);
        assert_ne!(
            signer.issue(1, "snsapi_base", "/").1.nonce,
            signer.issue(1, "snsapi_base", "/").1.nonce
        );
    }
}
