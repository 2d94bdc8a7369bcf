//! Web authorization (网页授权, WECHAT.md §6): `/auth/login`, `/auth/callback`, `/auth/logout`.
//!
//! A callback is safe to receive any number of times: its state is signed and single use, its code is
//! claimed in the database before the one exchange, and a repeat either finds the browser that started it
//! (and signs that browser in) or quietly starts a fresh authorization. A follower never sees 40163.

pub mod state;

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower_sessions::Session;

use crate::api::ApiError;
use crate::api::sns::Grant;
use crate::app::AppState;
use crate::error::{AppError, ErrorPage};
use crate::sessions::{CsrfForm, check_csrf};
use crate::store::{Claim, OAuthState, Outcome, Profile, Tokens, unix_now};
use state::StateError;

/// The two scopes of §6.1.
pub const SCOPE_USERINFO: &str = "snsapi_userinfo";
pub const SCOPE_BASE: &str = "snsapi_base";
/// Where a follower lands after signing in when `next` is absent or unsafe.
pub const DEFAULT_NEXT: &str = "/me";
/// refresh_token lives 30 days (§6.4).
pub const REFRESH_TOKEN_LIFETIME: i64 = 30 * 86_400;
/// How long a repeated callback waits for the first arrival's exchange to finish.
const REPEAT_WAIT: Duration = Duration::from_secs(6);
/// Authorizations started in one session and not yet finished, newest last (several tabs).
const MAX_PENDING: usize = 5;

const FOLLOWER: &str = "follower";
const PENDING: &str = "oauth_pending";

/// Who is signed in to the portal, as kept in the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Follower {
    pub openid: String,
    pub scope: String,
    /// The code whose exchange signed this session in: a reload of that callback goes straight on.
    pub code_hash: String,
}

impl Follower {
    /// The signed-in follower, if any.
    pub async fn current(session: &Session) -> Result<Option<Self>, AppError> {
        session.get(FOLLOWER).await.map_err(AppError::session)
    }

    /// Ends the portal session.
    pub async fn sign_out(session: &Session) -> Result<(), AppError> {
        session.flush().await.map_err(AppError::session)
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    scope: Option<String>,
    next: Option<String>,
}

/// `next` only when it is a path on this site: no scheme, no `//host`, no backslash or control
/// character (browsers turn `/\host` and `/<TAB>/host` into `//host`).
pub fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && path.len() <= 512
                && !path.bytes().any(|b| b == b'\\' || b <= b' ' || b == 0x7f) =>
        {
            path
        }
        _ => DEFAULT_NEXT,
    }
}

/// The URL that starts an authorization at our own `/auth/login`.
pub fn login_path(scope: &str, next: &str) -> String {
    format!(
        "/auth/login?scope={scope}&next={}",
        urlencoding::encode(next)
    )
}

#[tracing::instrument(skip_all)]
async fn login(
    State(app): State<AppState>,
    session: Session,
    Query(query): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let scope = match query.scope.as_deref() {
        Some(SCOPE_BASE) => SCOPE_BASE,
        _ => SCOPE_USERINFO,
    };
    let next = local_path(query.next.as_deref());
    let (state, issued) = app.keys.state.issue(unix_now());
    app.store
        .create_oauth_state(&issued.nonce, scope, next, issued.expires_at)
        .await?;
    let mut pending: Vec<String> = session
        .get(PENDING)
        .await
        .map_err(AppError::session)?
        .unwrap_or_default();
    pending.push(issued.nonce);
    if pending.len() > MAX_PENDING {
        pending.drain(..pending.len() - MAX_PENDING);
    }
    session
        .insert(PENDING, pending)
        .await
        .map_err(AppError::session)?;
    // §6.1: exactly this parameter order, and the fragment.
    let location = format!(
        "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={scope}&state={state}#wechat_redirect",
        app.config.wechat_open_url,
        app.config.appid,
        urlencoding::encode(&format!("{}/auth/callback", app.config.public_url)),
    );
    Ok(found(&location))
}

/// A 302, as WeChat's own redirects are (axum's `Redirect::to` is a 303).
pub fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn callback(
    State(app): State<AppState>,
    session: Session,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let verified = app
        .keys
        .state
        .verify(query.state.as_deref(), unix_now())
        .map_err(state_failure)?;
    let pending: Vec<String> = session
        .get(PENDING)
        .await
        .map_err(AppError::session)?
        .unwrap_or_default();
    let signed_in = Follower::current(&session).await?;
    // "The session came back": this browser has used the portal before, so the state must be its own.
    let session_came_back = !pending.is_empty() || signed_in.is_some();
    let started_here = pending.contains(&verified.nonce);

    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        // The follower pressed "refuse" (§6.2): the state is spent, nothing is stored.
        let row = app.store.consume_oauth_state(&verified.nonce).await?;
        tracing::info!("the follower refused authorization");
        let retry = row.map_or_else(
            || login_path(SCOPE_USERINFO, DEFAULT_NEXT),
            |r| login_path(&r.scope, &r.next),
        );
        return Err(ErrorPage::new(
            StatusCode::FORBIDDEN,
            "未完成授权",
            "您没有同意授权，所以无法登录。如需登录，请重试并点击“允许”。",
            "You did not allow the authorization, so you are not signed in. Try again and tap Allow to sign in.",
        )
        .retry(retry)
        .into());
    };
    let code_hash = hex::encode(Sha256::digest(code.as_bytes()));

    // A reload of the callback that signed this very session in.
    if let Some(follower) = &signed_in
        && follower.code_hash == code_hash
    {
        let next = app
            .store
            .oauth_state_by_code(&code_hash)
            .await?
            .map_or_else(|| DEFAULT_NEXT.to_owned(), |r| r.next);
        return Ok(found(&next));
    }
    if session_came_back && !started_here {
        // Login CSRF, or a link shared from another phone: never sign this browser in with it.
        tracing::warn!("callback state was not started by this session; starting afresh");
        return fresh_start(&app, &verified.nonce).await;
    }

    match app
        .store
        .claim_oauth_state(&verified.nonce, &code_hash)
        .await?
    {
        Claim::Claimed(row) => exchange(&app, &session, row, &code, &code_hash).await,
        Claim::Repeat(row) => repeat(&app, &session, row, started_here, &code_hash).await,
        Claim::Reused => Err(state_failure(StateError::Invalid)),
        Claim::Unknown => Err(state_failure(StateError::Expired)),
    }
}

/// Sends the browser to authorize again, keeping where it was going.
async fn fresh_start(app: &AppState, nonce: &str) -> Result<Response, AppError> {
    let (scope, next) = match app.store.oauth_state(nonce).await? {
        Some(row) => (row.scope, row.next),
        None => (SCOPE_USERINFO.to_owned(), DEFAULT_NEXT.to_owned()),
    };
    Ok(found(&login_path(&scope, &next)))
}

/// The one exchange of a code: tokens, the profile for `snsapi_userinfo`, the row, the session.
async fn exchange(
    app: &AppState,
    session: &Session,
    row: OAuthState,
    code: &str,
    code_hash: &str,
) -> Result<Response, AppError> {
    let retry = login_path(&row.scope, &row.next);
    let grant = match app.sns.exchange_code(code).await {
        Ok(grant) => grant,
        Err(e) => {
            app.store
                .finish_oauth_state(&row.nonce, Outcome::Failed)
                .await?;
            return Err(upstream_failure("code exchange", &e, &retry).into());
        }
    };
    if grant.is_snapshot_user() {
        app.store
            .finish_oauth_state(&row.nonce, Outcome::Snapshot)
            .await?;
        tracing::info!("snapshot user (朋友圈快照页): nothing stored");
        return crate::pages::snapshot_page(app);
    }
    let profile = if grant.scope.split(',').any(|s| s == SCOPE_USERINFO) {
        match fetch_profile(
            app,
            &grant.access_token,
            &grant.openid,
            grant.unionid.as_deref(),
        )
        .await
        {
            Ok(profile) => Some(profile),
            Err(e) => {
                app.store
                    .finish_oauth_state(&row.nonce, Outcome::Failed)
                    .await?;
                return Err(upstream_failure("userinfo", &e, &retry).into());
            }
        }
    } else {
        None
    };
    app.store
        .save_authorization(
            &row.nonce,
            &grant.openid,
            grant.unionid.as_deref(),
            &tokens_of(&grant),
            profile.as_ref(),
        )
        .await?;
    sign_in(session, &grant.openid, &grant.scope, code_hash, &row.nonce).await?;
    tracing::info!(scope = %grant.scope, "follower authorized");
    Ok(found(&row.next))
}

/// The same code again. Waits for the first arrival to finish; signs in only the browser that started
/// this authorization; anyone else starts afresh.
async fn repeat(
    app: &AppState,
    session: &Session,
    row: OAuthState,
    started_here: bool,
    code_hash: &str,
) -> Result<Response, AppError> {
    let deadline = tokio::time::Instant::now() + REPEAT_WAIT;
    let mut row = row;
    while row.outcome.as_deref() == Some("pending") && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        match app.store.oauth_state(&row.nonce).await? {
            Some(fresh) => row = fresh,
            None => break,
        }
    }
    tracing::info!(
        outcome = row.outcome.as_deref().unwrap_or("none"),
        started_here,
        "repeated callback"
    );
    if let (true, Some("done"), Some(openid)) =
        (started_here, row.outcome.as_deref(), row.openid.as_deref())
        && let Some(user) = app.store.user(openid).await?
    {
        let scope = user.scope.unwrap_or_else(|| row.scope.clone());
        sign_in(session, openid, &scope, code_hash, &row.nonce).await?;
        return Ok(found(&row.next));
    }
    Ok(found(&login_path(&row.scope, &row.next)))
}

async fn sign_in(
    session: &Session,
    openid: &str,
    scope: &str,
    code_hash: &str,
    nonce: &str,
) -> Result<(), AppError> {
    // A new session id at sign-in: an id planted before (session fixation) is worthless.
    session.cycle_id().await.map_err(AppError::session)?;
    let mut pending: Vec<String> = session
        .get(PENDING)
        .await
        .map_err(AppError::session)?
        .unwrap_or_default();
    pending.retain(|n| n != nonce);
    session
        .insert(PENDING, pending)
        .await
        .map_err(AppError::session)?;
    session
        .insert(
            FOLLOWER,
            Follower {
                openid: openid.to_owned(),
                scope: scope.to_owned(),
                code_hash: code_hash.to_owned(),
            },
        )
        .await
        .map_err(AppError::session)
}

/// The profile for a userinfo-scope token.
pub async fn fetch_profile(
    app: &AppState,
    access_token: &str,
    openid: &str,
    unionid: Option<&str>,
) -> Result<Profile, ApiError> {
    let info = app.sns.userinfo(access_token, openid).await?;
    Ok(Profile {
        unionid: info.unionid.or_else(|| unionid.map(str::to_owned)),
        nickname: info.nickname,
        sex: info.sex,
        province: info.province,
        city: info.city,
        country: info.country,
        headimgurl: info.headimgurl,
        privilege: serde_json::to_string(&info.privilege).unwrap_or_else(|_| "[]".into()),
        raw: info.raw,
    })
}

/// The tokens of a grant with absolute expiry times.
pub fn tokens_of(grant: &Grant) -> Tokens {
    let now = unix_now();
    Tokens {
        scope: grant.scope.clone(),
        access_token: grant.access_token.clone(),
        access_token_expires_at: now + grant.expires_in,
        refresh_token: grant.refresh_token.clone(),
        refresh_token_expires_at: now + REFRESH_TOKEN_LIFETIME,
    }
}

async fn logout(session: Session, Form(form): Form<CsrfForm>) -> Result<Response, AppError> {
    check_csrf(&session, &form.csrf).await?;
    Follower::sign_out(&session).await?;
    Ok(Redirect::to("/").into_response())
}

/// The page for a state that cannot be used.
fn state_failure(e: StateError) -> AppError {
    tracing::warn!(reason = %e, "callback refused");
    let (zh, en) = match e {
        StateError::Missing => (
            "链接不完整，缺少必要的参数。",
            "The link is incomplete: a required parameter is missing.",
        ),
        StateError::Invalid => (
            "这个授权链接无效或已经使用过。",
            "This authorization link is not valid or has already been used.",
        ),
        StateError::Expired => (
            "授权已超时（10 分钟内有效），请重新授权。",
            "The authorization timed out (it is valid for 10 minutes). Please authorize again.",
        ),
    };
    ErrorPage::new(StatusCode::BAD_REQUEST, "授权链接已失效", zh, en)
        .retry(login_path(SCOPE_USERINFO, DEFAULT_NEXT))
        .into()
}

/// The page for a failed call to WeChat, with the status that says whose side failed, and the log line
/// with the errcode for the operator.
pub fn upstream_failure(call: &str, e: &ApiError, retry: &str) -> ErrorPage {
    tracing::warn!(call, errcode = e.errcode(), error = %e, "WeChat call failed");
    let (status, title, zh, en) = match e {
        ApiError::Api { errcode, .. } => match errcode {
            40029 | 40163 | 42003 | 41008 => (
                StatusCode::BAD_REQUEST,
                "授权已失效",
                "这次授权已经失效或已被使用，请重新授权。",
                "This authorization has expired or was already used. Please authorize again.",
            ),
            40125 | 41004 => (
                StatusCode::BAD_GATEWAY,
                "公众号配置有误",
                "公众号的 AppSecret 配置有误，暂时无法登录。请联系公众号运营者。",
                "The account's AppSecret is misconfigured, so sign-in is unavailable. Please tell the account's operator.",
            ),
            40164 => (
                StatusCode::BAD_GATEWAY,
                "服务器未获授权",
                "公众号服务器的 IP 不在微信的白名单中，暂时无法登录。请联系公众号运营者。",
                "The account's server IP is not on WeChat's whitelist, so sign-in is unavailable. Please tell the account's operator.",
            ),
            45009 => (
                StatusCode::SERVICE_UNAVAILABLE,
                "今日访问已达上限",
                "公众号今天的接口调用次数已用完，请明天再试。",
                "The account has used up today's WeChat API quota. Please try again tomorrow.",
            ),
            -1 => (
                StatusCode::SERVICE_UNAVAILABLE,
                "微信系统繁忙",
                "微信系统繁忙，请稍后重试。",
                "WeChat is busy. Please try again in a moment.",
            ),
            48001 | 50001 => (
                StatusCode::FORBIDDEN,
                "未获得授权",
                "您没有授权公众号读取这些资料。",
                "You have not allowed the account to read this information.",
            ),
            _ => (
                StatusCode::BAD_GATEWAY,
                "微信返回了错误",
                "微信拒绝了这次请求，请稍后重试。",
                "WeChat refused the request. Please try again later.",
            ),
        },
        ApiError::Status(_) | ApiError::Garbage(_) | ApiError::Unreachable(_) => (
            StatusCode::BAD_GATEWAY,
            "微信服务异常",
            "暂时无法连接微信服务，请稍后重试。",
            "WeChat's service did not answer properly. Please try again later.",
        ),
        ApiError::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "微信响应超时",
            "微信没有及时响应，请稍后重试。",
            "WeChat did not answer in time. Please try again later.",
        ),
        ApiError::NoSecret => (
            StatusCode::SERVICE_UNAVAILABLE,
            "公众号尚未配置",
            "公众号还没有配置 AppSecret，暂时无法登录。请联系公众号运营者。",
            "The account has not configured its AppSecret yet, so sign-in is unavailable. Please tell the account's operator.",
        ),
    };
    ErrorPage::new(status, title, zh, en).retry(retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_kept_as_next() {
        for ok in ["/me", "/me?tab=1", "/a/b#c", "/"] {
            assert_eq!(local_path(Some(ok)), ok);
        }
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "javascript:alert(1)",
            "evil.example",
            "",
            " /me",
        ] {
            assert_eq!(local_path(Some(bad)), DEFAULT_NEXT, "{bad:?}");
        }
        assert_eq!(local_path(None), DEFAULT_NEXT);
    }
}
