//! Admin accounts: argon2id password hashes, sign-in (failures slowed, and limited per account and per
//! client address), sign-out.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::see_other;
use crate::app::AppState;
use crate::error::AppError;
use crate::oauth::local_path;
use crate::pages::{Layout, render};
use crate::sessions::{check_csrf, csrf_token};
use crate::store::unix_now;

/// Failures are counted over this window.
pub const WINDOW_SECS: i64 = 15 * 60;
/// Failed sign-ins to one account within the window before it refuses every attempt.
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// Failed sign-ins from one address within the window before it is refused.
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;
/// Every failure is answered this late, so guessing is slow even below the limits.
const FAILURE_DELAY: Duration = Duration::from_secs(1);
pub const MIN_PASSWORD_CHARS: usize = 10;
const SESSION_KEY: &str = "admin";

/// What the session remembers of its admin: who, and which password they signed in under.
#[derive(Debug, Serialize, Deserialize)]
struct AdminSession {
    id: i64,
    password_changed_at: i64,
}

/// The admin a request is signed in as, put in the request by the guard.
#[derive(Debug, Clone)]
pub struct CurrentAdmin {
    pub name: String,
}

/// An argon2id hash (the crate's defaults: 19 MiB, 2 passes) with a fresh salt, in PHC format.
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password failed: {e}"))
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash of nothing anyone knows: verified against when the account does not exist, so an unknown
/// name takes as long to refuse as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random: [u8; 16] = rand::random();
        hash_password(&hex::encode(random)).unwrap_or_default()
    })
}

/// Names are what operators type: letters, digits and `_ . - @`, up to 64.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "an admin name is 1 to 64 letters, digits or _ . - @ (got {name:?})"
        ))
    }
}

pub fn check_password(password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        Err(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters (it has {chars})"
        ))
    } else if password.len() > 1024 {
        Err("the password is longer than 1024 bytes".into())
    } else {
        Ok(())
    }
}

/// The admin this session is signed in as, if the account still exists and its password has not
/// changed since.
pub async fn signed_in_admin(
    app: &AppState,
    session: &Session,
) -> Result<Option<CurrentAdmin>, AppError> {
    let Some(remembered) = session
        .get::<AdminSession>(SESSION_KEY)
        .await
        .map_err(AppError::session)?
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

/// The client's address: the configured proxy header's (first) value, else the connection's peer.
fn client_address(app: &AppState, headers: &HeaderMap, peer: SocketAddr) -> String {
    app.config
        .client_ip_header
        .as_ref()
        .and_then(|h| headers.get(h))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map_or_else(|| peer.ip().to_string(), str::to_owned)
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
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_page(
    State(app): State<AppState>,
    session: Session,
    Query(q): Query<NextQuery>,
) -> Result<Response, AppError> {
    let next = admin_next(q.next.as_deref());
    if signed_in_admin(&app, &session).await?.is_some() {
        return Ok(see_other(next));
    }
    login_form(&app, &session, StatusCode::OK, next, "", None).await
}

/// The sign-in page: blank, or again after a failure with its reason and the name typed.
async fn login_form(
    app: &AppState,
    session: &Session,
    status: StatusCode,
    next: &str,
    name: &str,
    error: Option<String>,
) -> Result<Response, AppError> {
    let page = render(&LoginTemplate {
        layout: Layout::new(app, false),
        csrf: csrf_token(session).await?,
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
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    check_csrf(&session, &form.csrf).await?;
    let next = admin_next(form.next.as_deref());
    let name = form.name.trim();
    let address = client_address(&app, &headers, peer);
    let again = |status, error: String| login_form(&app, &session, status, next, name, Some(error));

    let now = unix_now();
    let (by_account, by_address) = app
        .store
        .login_failures(name, &address, now - WINDOW_SECS)
        .await?;
    if by_account >= MAX_FAILURES_PER_ACCOUNT || by_address >= MAX_FAILURES_PER_ADDRESS {
        tracing::warn!(
            account = name,
            address,
            by_account,
            by_address,
            "sign-in refused: too many failures"
        );
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "登录失败次数过多，请 {} 分钟后再试。Too many failed attempts: try again in {} minutes.",
                WINDOW_SECS / 60,
                WINDOW_SECS / 60
            ),
        )
        .await;
    }

    let admin = app.store.admin_by_name(name).await?;
    let (hash, password) = (
        admin
            .as_ref()
            .map_or_else(|| decoy_hash().to_owned(), |a| a.password_hash.clone()),
        form.password,
    );
    let valid = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    let admin = match admin {
        Some(admin) if valid => admin,
        _ => {
            app.store
                .record_login_failure(name, &address, now - WINDOW_SECS)
                .await?;
            tracing::warn!(account = name, address, "sign-in failed");
            tokio::time::sleep(FAILURE_DELAY).await;
            return again(
                StatusCode::UNAUTHORIZED,
                "用户名或密码不正确。Wrong name or password.".into(),
            )
            .await;
        }
    };

    app.store.clear_login_failures(name).await?;
    app.store.touch_admin_login(admin.id).await?;
    // A new session id, and a new CSRF token: nothing from before sign-in carries over.
    session.cycle_id().await.map_err(AppError::session)?;
    session
        .remove::<String>("csrf")
        .await
        .map_err(AppError::session)?;
    session
        .insert(
            SESSION_KEY,
            AdminSession {
                id: admin.id,
                password_changed_at: admin.password_changed_at,
            },
        )
        .await
        .map_err(AppError::session)?;
    tracing::info!(admin = admin.name, address, "admin signed in");
    Ok(see_other(next))
}

/// `POST /admin/logout` (behind the guard, so the CSRF token is checked).
pub async fn logout(session: Session) -> Result<Response, AppError> {
    session
        .remove::<AdminSession>(SESSION_KEY)
        .await
        .map_err(AppError::session)?;
    session.cycle_id().await.map_err(AppError::session)?;
    Ok(see_other("/admin/login"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify_password(&a, "correct horse battery"));
        assert!(!verify_password(&a, "correct horse battery "));
        assert!(!verify_password("not a hash", "x"));
    }

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
    fn names_and_passwords_are_checked() {
        assert!(check_name("ops.lead@shop").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("李雷").is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("long enough!").is_ok());
    }
}
