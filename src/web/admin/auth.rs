//! Admin accounts: argon2id password hashes, sign-in, sign-out.
//!
//! Every attempt is counted before its password is checked, so concurrent guesses cannot slip past the
//! limits. Lockout is per (account, client address) and per address: failures from one place never lock
//! the operator out from another. A name attacked from many addresses is slowed down, not locked. At
//! most one password check per core runs at once; more waiting attempts are refused.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower_sessions::Session;

use super::frame::{CurrentAdmin, see_other};
use crate::passwords::{self, MAX_PASSWORD_BYTES};
use crate::time::unix_now;
use crate::web::error::AppError;
use crate::web::portal::oauth::local_path;
use crate::web::sessions::Csrf;
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};

/// Failures are counted over this window.
pub(crate) const WINDOW_SECS: i64 = 15 * 60;
/// Attempts on one account from one address within the window before that pair is refused.
pub(crate) const MAX_ATTEMPTS_PER_PAIR: i64 = 5;
/// Attempts from one address within the window before it is refused.
pub(crate) const MAX_ATTEMPTS_PER_ADDRESS: i64 = 20;
/// Attempts on one account (from anywhere) within the window past which each one waits longer.
pub(crate) const SLOW_DOWN_AFTER: i64 = 10;
/// The wait added per attempt past [`SLOW_DOWN_AFTER`], and its ceiling.
const SLOW_DOWN_STEP: Duration = Duration::from_millis(250);
const SLOW_DOWN_MAX: Duration = Duration::from_secs(10);
/// Every failure is answered this late, so guessing is slow even below the limits.
const FAILURE_DELAY: Duration = Duration::from_secs(1);
const SESSION_KEY: &str = "admin";

/// What the session remembers of its admin: who, and which password they signed in under.
#[derive(Debug, Serialize, Deserialize)]
struct AdminSession {
    id: i64,
    password_changed_at: i64,
}

/// A hash of nothing anyone knows: verified against when the account does not exist, so an unknown
/// name takes as long to refuse as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random: [u8; 16] = rand::random();
        passwords::hash(&hex::encode(random)).unwrap_or_default()
    })
}

/// The admin this session is signed in as, if the account still exists and its password has not
/// changed since.
pub(crate) async fn signed_in_admin(
    app: &AppState,
    session: &Session,
) -> Result<Option<CurrentAdmin>, AppError> {
    let Some(remembered) = session
        .get::<AdminSession>(SESSION_KEY)
        .await
        .map_err(AppError::from)?
    else {
        return Ok(None);
    };
    Ok(app
        .store
        .admin_by_id(remembered.id)
        .await?
        .filter(|a| a.password_changed_at == remembered.password_changed_at)
        .map(|a| CurrentAdmin { name: a.name }))
}

/// Where to go after signing in: a path in the admin area, or the dashboard.
fn admin_next(next: Option<&str>) -> &str {
    match local_path(next) {
        p if p == "/admin" || p.starts_with("/admin/") || p.starts_with("/admin?") => p,
        _ => "/admin",
    }
}

/// The name as counted and logged: a hash, since what is typed there may be a password.
fn name_key(name: &str) -> String {
    let digest = Sha256::digest(name.to_lowercase().as_bytes());
    hex::encode(&digest[..8])
}

/// How long an attempt on a name with `attempts` in the window waits before its check.
fn slow_down(attempts: i64) -> Duration {
    let over = u32::try_from(attempts - SLOW_DOWN_AFTER).unwrap_or(0);
    (SLOW_DOWN_STEP * over).min(SLOW_DOWN_MAX)
}

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginTemplate<'a> {
    layout: Layout,
    csrf: String,
    next: &'a str,
    name: &'a str,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

pub(crate) async fn login_page(
    State(app): State<AppState>,
    session: Session,
    csrf: Csrf,
    Query(q): Query<NextQuery>,
) -> Result<Response, AppError> {
    let next = admin_next(q.next.as_deref());
    if signed_in_admin(&app, &session).await?.is_some() {
        return Ok(see_other(next));
    }
    login_form(&app, &csrf, StatusCode::OK, next, "", None)
}

/// The sign-in page: blank, or again after a failure with its reason and the name typed.
fn login_form(
    app: &AppState,
    csrf: &Csrf,
    status: StatusCode,
    next: &str,
    name: &str,
    error: Option<String>,
) -> Result<Response, AppError> {
    let page = render(&LoginTemplate {
        layout: Layout::new(app, false),
        csrf: csrf.token(),
        next,
        name,
        error,
    })?;
    Ok((status, page).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    csrf: Csrf,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    csrf.check(&form.csrf)?;
    let next = admin_next(form.next.as_deref());
    let name = form.name.trim();
    let address = app.limits.client(&headers, peer);
    let account = name_key(name);
    let again = |status, error: String| login_form(&app, &csrf, status, next, name, Some(error));
    if form.password.len() > MAX_PASSWORD_BYTES {
        return again(
            StatusCode::BAD_REQUEST,
            format!(
                "密码不能超过 {MAX_PASSWORD_BYTES} 字节。The password is longer than {MAX_PASSWORD_BYTES} bytes."
            ),
        );
    }

    let attempts = app
        .store
        .count_login_attempt(&account, &address, unix_now() - WINDOW_SECS)
        .await?;
    if attempts.pair > MAX_ATTEMPTS_PER_PAIR || attempts.address > MAX_ATTEMPTS_PER_ADDRESS {
        tracing::warn!(
            account,
            address,
            attempts.pair,
            attempts.address,
            "sign-in refused: too many attempts"
        );
        let mut page = again(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "登录失败次数过多，请 {} 分钟后再试。Too many failed attempts: try again in {} minutes.",
                WINDOW_SECS / 60,
                WINDOW_SECS / 60
            ),
        )?;
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(WINDOW_SECS));
        return Ok(page);
    }
    let wait = slow_down(attempts.account);
    if !wait.is_zero() {
        tracing::info!(
            account,
            attempts.account,
            wait_ms = wait.as_millis() as u64,
            "sign-in slowed: the name is under attack"
        );
        tokio::time::sleep(wait).await;
    }
    // One check per core at a time: a flood of attempts queues nowhere, it is refused.
    let Ok(permit) = Arc::clone(&app.password_checks).try_acquire_owned() else {
        tracing::warn!(
            account,
            address,
            "sign-in refused: every password check is busy"
        );
        return Err(AppError::TooMany { retry_after: 1 });
    };

    let admin = app.store.admin_by_name(name).await?;
    let (hash, password) = (
        admin
            .as_ref()
            .map_or_else(|| decoy_hash().to_owned(), |a| a.password_hash.clone()),
        form.password,
    );
    let valid = tokio::task::spawn_blocking(move || passwords::verify(&hash, &password))
        .await
        .unwrap_or(false);
    drop(permit);
    let admin = match admin {
        Some(admin) if valid => admin,
        _ => {
            tracing::warn!(account, address, "sign-in failed");
            tokio::time::sleep(FAILURE_DELAY).await;
            return again(
                StatusCode::UNAUTHORIZED,
                "用户名或密码不正确。Wrong name or password.".into(),
            );
        }
    };

    app.store.clear_login_attempts(&account, &address).await?;
    app.store.touch_admin_login(admin.id).await?;
    // A new session id, and a new CSRF token: nothing from before sign-in carries over.
    session.cycle_id().await.map_err(AppError::from)?;
    csrf.renew();
    session
        .insert(
            SESSION_KEY,
            AdminSession {
                id: admin.id,
                password_changed_at: admin.password_changed_at,
            },
        )
        .await
        .map_err(AppError::from)?;
    tracing::info!(admin = admin.name, address, "admin signed in");
    Ok(see_other(next))
}

/// `POST /admin/logout` (behind the guard, so the CSRF token is checked).
pub async fn logout(session: Session, csrf: Csrf) -> Result<Response, AppError> {
    session
        .remove::<AdminSession>(SESSION_KEY)
        .await
        .map_err(AppError::from)?;
    session.cycle_id().await.map_err(AppError::from)?;
    csrf.renew();
    Ok(see_other("/admin/login"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_only_returns_into_the_admin_area() {
        assert_eq!(admin_next(Some("/admin/users?q=a")), "/admin/users?q=a");
        assert_eq!(admin_next(Some("/admin")), "/admin");
        for bad in [
            "//evil.example/admin",
            "https://evil.example",
            "/me",
            "/administrator",
            "/\\evil",
        ] {
            assert_eq!(admin_next(Some(bad)), "/admin", "{bad}");
        }
        assert_eq!(admin_next(None), "/admin");
    }

    #[test]
    fn a_name_under_attack_waits_longer_up_to_a_ceiling() {
        assert_eq!(slow_down(1), Duration::ZERO);
        assert_eq!(slow_down(SLOW_DOWN_AFTER), Duration::ZERO);
        assert!(slow_down(SLOW_DOWN_AFTER + 4) > slow_down(SLOW_DOWN_AFTER + 1));
        assert_eq!(slow_down(10_000), SLOW_DOWN_MAX);
        assert_eq!(name_key("Ops"), name_key("ops"));
        assert!(!name_key("hunter2hunter2").contains("hunter"));
    }
}
