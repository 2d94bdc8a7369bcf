//! The keys derived from the one server secret: one per purpose, so none can stand in for another.

use sha2::{Digest, Sha256, Sha512};
use tower_sessions::cookie::Key;

use super::oauth_state::StateSigner;
use crate::config::Config;
use crate::store::{Store, StoreError};

/// Keys derived from the one server secret: one per purpose, so neither can stand in for the other.
#[derive(Clone)]
pub struct Keys {
    pub cookie: Key,
    pub state: StateSigner,
    /// Signs the CSRF tokens of forms.
    pub csrf: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(***)")
    }
}

impl Keys {
    /// From `WXPORTAL_SESSION_KEY`, or the key generated on first start and kept in the database (so
    /// a restart or another instance does not sign everyone out).
    pub async fn load(config: &Config, store: &Store) -> Result<Self, StoreError> {
        let secret = match &config.session_key {
            Some(key) => key.expose().to_owned(),
            None => {
                store
                    .setting_or_insert("server_secret", || {
                        let mut bytes = [0u8; 32];
                        rand::fill(&mut bytes);
                        hex::encode(bytes)
                    })
                    .await?
            }
        };
        Ok(Self::derive(secret.as_bytes()))
    }

    fn derive(secret: &[u8]) -> Self {
        let cookie = Sha512::new()
            .chain_update(b"wxportal session cookie\0")
            .chain_update(secret)
            .finalize();
        let state = Sha256::new()
            .chain_update(b"wxportal oauth state\0")
            .chain_update(secret)
            .finalize();
        let csrf = Sha256::new()
            .chain_update(b"wxportal csrf token\0")
            .chain_update(secret)
            .finalize();
        Self {
            cookie: Key::from(&cookie),
            state: StateSigner::new(state.into()),
            csrf: csrf.into(),
        }
    }
}
