//! Sessions (stored in the database, cookie signed), the server key they and OAuth states are signed
//! with, and the CSRF token every form carries.

use axum::http::StatusCode;
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use tower_sessions::cookie::{Key, SameSite};
use tower_sessions::service::SignedCookie;
use tower_sessions::{Expiry, Session, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

use crate::config::Config;
use crate::error::{AppError, ErrorPage};
use crate::oauth::state::StateSigner;
use crate::store::{Store, StoreError};

/// The session cookie's name.
pub const COOKIE: &str = "wxportal_session";
/// A session ends after this long without a visit.
const IDLE_DAYS: i64 = 30;
const CSRF: &str = "csrf";

/// Keys derived from the one server secret: one per purpose, so neither can stand in for the other.
#[derive(Clone)]
pub struct Keys {
    pub cookie: Key,
    pub state: StateSigner,
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
                        rand::thread_rng().fill_bytes(&mut bytes);
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
        Self {
            cookie: Key::from(&cookie),
            state: StateSigner::new(state.into()),
        }
    }
}

/// The session layer: `HttpOnly`, `SameSite=Lax` (a Strict cookie would not come back from WeChat's
/// authorize page), `Secure` when the public URL is https.
pub fn layer(
    store: &Store,
    keys: &Keys,
    config: &Config,
) -> SessionManagerLayer<SqliteStore, SignedCookie> {
    SessionManagerLayer::new(store.session_store())
        .with_name(COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.public_url.starts_with("https://"))
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::days(IDLE_DAYS),
        ))
        .with_signed(keys.cookie.clone())
}

/// A form whose only field is the CSRF token (sign-out, refresh, delete).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// The session's CSRF token, created on first use: forms carry it, [`check_csrf`] compares it.
pub async fn csrf_token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session
        .get::<String>(CSRF)
        .await
        .map_err(AppError::session)?
    {
        return Ok(token);
    }
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    session
        .insert(CSRF, &token)
        .await
        .map_err(AppError::session)?;
    Ok(token)
}

/// Refuses a form whose token is missing or differs from the session's (compared in constant time).
pub async fn check_csrf(session: &Session, submitted: &str) -> Result<(), AppError> {
    let expected = session
        .get::<String>(CSRF)
        .await
        .map_err(AppError::session)?
        .unwrap_or_default();
    let same = !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()));
    if same {
        Ok(())
    } else {
        tracing::warn!(
            reason = "csrf",
            "form refused: its CSRF token is missing or stale"
        );
        Err(ErrorPage::new(
            StatusCode::FORBIDDEN,
            "页面已过期",
            "这个页面已过期，或者表单不是从本站提交的。请返回、刷新页面后再试。",
            "This page has expired, or the form was not sent from this site. Go back, reload and try again.",
        )
        .into())
    }
}
