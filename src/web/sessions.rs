//! Sessions (stored in the database, cookie signed), the server key they and OAuth states are signed
//! with, and the CSRF token every form carries.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use hmac::{Hmac, KeyInit, Mac};

use sha2::Sha256;
use subtle::ConstantTimeEq;
use tower_cookies::Cookies;
use tower_sessions::cookie::{Cookie, SameSite};
use tower_sessions::service::SignedCookie;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::config::Config;
use crate::store::{SessionRows, Store};
use crate::time::unix_now;
use crate::web::error::{AppError, ErrorPage};
use crate::web::keys::Keys;
use crate::web::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "wxportal_session";
/// A session ends after this long without a visit.
const IDLE_DAYS: i64 = 30;

/// The session layer: `HttpOnly`, `SameSite=Lax` (a Strict cookie would not come back from WeChat's
/// authorize page), `Secure` when the public URL is https.
pub(crate) fn layer(
    store: &Store,
    keys: &Keys,
    config: &Config,
) -> SessionManagerLayer<SessionRows, SignedCookie> {
    SessionManagerLayer::new(store.session_store())
        .with_name(COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.is_https())
        .with_expiry(Expiry::OnInactivity(time::Duration::days(IDLE_DAYS)))
        .with_signed(keys.cookie.clone())
}

/// A form whose only field is the CSRF token (sign-out, refresh, delete).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// The CSRF protection of every form, with no database row: a random value in its own cookie, and in
/// each form a token signed over that value with an expiry (`hex(expiry ‖ HMAC-SHA256 tag)`, 32
/// characters). Another site can neither read the cookie nor sign a token for it. Signing in or out
/// draws a new value, so no token from before carries over.
pub struct Csrf {
    cookies: Cookies,
    key: [u8; 32],
    secure: bool,
}

/// The cookie holding the value tokens are bound to.
pub(crate) const CSRF_COOKIE: &str = "wxportal_csrf";
/// How long a form stays usable after it was drawn.
const CSRF_LIFETIME_SECS: u32 = 24 * 3600;

impl FromRequestParts<AppState> for Csrf {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let cookies = parts
            .extensions
            .get::<Cookies>()
            .cloned()
            .ok_or_else(|| AppError::Internal("no cookie jar on this route"))?;
        Ok(Self {
            cookies,
            key: app.keys.csrf,
            secure: app.config.is_https(),
        })
    }
}

impl Csrf {
    fn bound_value(&self) -> Option<String> {
        self.cookies
            .get(CSRF_COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// Draws a new value: the tokens of every form shown before stop working.
    pub(crate) fn renew(&self) -> String {
        let mut bytes = [0u8; 16];
        rand::fill(&mut bytes);
        let value = hex::encode(bytes);
        let mut cookie = Cookie::new(CSRF_COOKIE, value.clone());
        cookie.set_path("/");
        cookie.set_http_only(true);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_secure(self.secure);
        self.cookies.add(cookie);
        value
    }

    fn tag(&self, value: &str, expires_at: u32) -> [u8; 12] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(value.as_bytes());
        mac.update(&expires_at.to_be_bytes());
        let full = mac.finalize().into_bytes();
        full[..12].try_into().expect("12 bytes")
    }

    /// The token for this browser's forms (setting its cookie if it has none yet).
    pub fn token(&self) -> String {
        let value = self.bound_value().unwrap_or_else(|| self.renew());
        let expires_at = u32::try_from(unix_now())
            .unwrap_or(u32::MAX)
            .saturating_add(CSRF_LIFETIME_SECS);
        let mut token = [0u8; 16];
        token[..4].copy_from_slice(&expires_at.to_be_bytes());
        token[4..].copy_from_slice(&self.tag(&value, expires_at));
        hex::encode(token)
    }

    /// Refuses a form whose token is missing, expired, or not signed for this browser's cookie (the
    /// tag compared in constant time).
    pub fn check(&self, submitted: &str) -> Result<(), AppError> {
        let valid = self.bound_value().is_some_and(|value| {
            let Ok(bytes) = hex::decode(submitted) else {
                return false;
            };
            let Ok(token) = <[u8; 16]>::try_from(bytes.as_slice()) else {
                return false;
            };
            let expires_at = u32::from_be_bytes(token[..4].try_into().expect("4 bytes"));
            let fresh = i64::from(expires_at) >= unix_now();
            fresh && bool::from(self.tag(&value, expires_at).ct_eq(&token[4..]))
        });
        if valid {
            return Ok(());
        }
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
