//! Web authorization (网页授权, docs/wechat.md §6): `/auth/login`, `/auth/callback`, `/auth/logout`.
//!
//! A callback is safe to receive any number of times: its state is signed and single use, its code is
//! claimed in the database before the one exchange, and a repeat either finds the browser that started it
//! (and signs that browser in) or quietly starts a fresh authorization. A follower never sees 40163.
//!
//! Longer than the other files: the callback's repeat handling (a second callback with the same code, a
//! lost cookie, another instance mid-exchange) is one piece that reads best whole, and its tests sit
//! beside it.

use std::time::Duration;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower_cookies::Cookies;
use tower_sessions::Session;
use tower_sessions::cookie::{Cookie, SameSite};

use crate::store::{Claim, NewState, OAuthState, Outcome, Profile, Tokens};
use crate::time::unix_now;
use crate::upstream::ApiError;
use crate::upstream::sns::Grant;
use crate::web::error::{AppError, ErrorPage};
use crate::web::keys::Keys;
use crate::web::limits::{self};
use crate::web::oauth_state::{STATE_LIFETIME_SECS, StateError, VerifiedState};
use crate::web::sessions::{Csrf, CsrfForm};
use crate::web::state::AppState;
use crate::web::ui::{Layout, Notice, render};

/// The two scopes of §6.1.
pub(crate) const SCOPE_USERINFO: &str = "snsapi_userinfo";
pub(crate) const SCOPE_BASE: &str = "snsapi_base";
/// Where a follower lands after signing in when `next` is absent or unsafe.
pub(crate) const DEFAULT_NEXT: &str = "/me";
/// refresh_token lives 30 days (§6.4).
pub(crate) const REFRESH_TOKEN_LIFETIME: i64 = 30 * 86_400;
/// How long a repeated callback waits for the first arrival's exchange to finish.
const REPEAT_WAIT: Duration = Duration::from_secs(6);
/// Authorizations started in one session and not yet finished, newest last (several tabs).
const MAX_PENDING: usize = 5;

const FOLLOWER: &str = "follower";
/// The short-lived signed cookie listing the authorizations this browser started (nonces).
const PENDING_COOKIE: &str = "wxportal_oauth";

/// Who is signed in to the portal, as kept in the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Follower {
    pub openid: String,
    pub scope: String,
    /// The code whose exchange signed this session in: a reload of that callback goes straight on.
    pub code_hash: String,
    /// When WeChat last authorized this session (an app's `max_age` and `prompt=login` look at it);
    /// 0 for a session signed in before this was kept.
    #[serde(default)]
    pub signed_in_at: i64,
}

impl Follower {
    /// The signed-in follower, if any.
    pub async fn current(session: &Session) -> Result<Option<Self>, AppError> {
        session.get(FOLLOWER).await.map_err(AppError::from)
    }

    /// Ends the portal session.
    pub(crate) async fn sign_out(session: &Session) -> Result<(), AppError> {
        session.flush().await.map_err(AppError::from)
    }
}

pub fn router(app: &AppState) -> Router<AppState> {
    let limited = |route| {
        axum::middleware::from_fn_with_state(
            (std::sync::Arc::clone(&app.limits), route),
            limits::limit,
        )
    };
    Router::new()
        .route(
            "/auth/login",
            get(login).route_layer(limited(limits::Route::AuthLogin)),
        )
        .route(
            "/auth/callback",
            get(callback).route_layer(limited(limits::Route::AuthCallback)),
        )
        .route("/auth/logout", post(logout))
}

/// The authorizations a browser started and has not finished, newest last: kept in a signed cookie
/// that lives as long as a state, so starting one writes nothing on the server.
struct Pending(Vec<String>);

impl Pending {
    fn read(cookies: &Cookies, keys: &Keys) -> Self {
        let value = cookies
            .signed(&keys.cookie)
            .get(PENDING_COOKIE)
            .map(|c| c.value().to_owned())
            .unwrap_or_default();
        Self(
            value
                .split('.')
                .filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_owned)
                .take(MAX_PENDING)
                .collect(),
        )
    }

    /// With a newly started authorization (the oldest dropped past [`MAX_PENDING`]).
    fn with(mut self, nonce: String) -> Self {
        self.0.push(nonce);
        if self.0.len() > MAX_PENDING {
            self.0.drain(..self.0.len() - MAX_PENDING);
        }
        self
    }

    /// Without a finished authorization.
    fn without(&self, nonce: &str) -> Self {
        Self(self.0.iter().filter(|n| *n != nonce).cloned().collect())
    }

    fn write(&self, cookies: &Cookies, keys: &Keys, secure: bool) {
        let mut cookie = Cookie::new(PENDING_COOKIE, self.0.join("."));
        cookie.set_path("/auth");
        cookie.set_http_only(true);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_secure(secure);
        cookie.set_max_age(time::Duration::seconds(if self.0.is_empty() {
            0
        } else {
            STATE_LIFETIME_SECS
        }));
        cookies.signed(&keys.cookie).add(cookie);
    }
}

/// Where WeChat sends the follower back: the callback, with `next` when it is not the default (the
/// state's signature covers it).
fn redirect_uri(public_url: &str, next: &str) -> String {
    if next == DEFAULT_NEXT {
        format!("{public_url}/auth/callback")
    } else {
        format!(
            "{public_url}/auth/callback?next={}",
            urlencoding::encode(next)
        )
    }
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    scope: Option<String>,
    next: Option<String>,
}

/// `next` only when it is a path on this site: no scheme, no `//host`, no backslash or control
/// character (browsers turn `/\host` and `/<TAB>/host` into `//host`).
pub(crate) fn local_path(next: Option<&str>) -> &str {
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
pub(crate) fn login_path(scope: &str, next: &str) -> String {
    format!(
        "/auth/login?scope={scope}&next={}",
        urlencoding::encode(next)
    )
}

async fn login(
    State(app): State<AppState>,
    cookies: Cookies,
    Query(query): Query<LoginQuery>,
) -> Result<Response, AppError> {
    let scope = match query.scope.as_deref() {
        Some(SCOPE_BASE) => SCOPE_BASE,
        _ => SCOPE_USERINFO,
    };
    let next = local_path(query.next.as_deref());
    let (state, issued) = app.keys.state.issue(unix_now(), scope, next);
    Pending::read(&cookies, &app.keys).with(issued.nonce).write(
        &cookies,
        &app.keys,
        app.config.is_https(),
    );
    // §6.1: exactly this parameter order, and the fragment.
    let location = format!(
        "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={scope}&state={state}#wechat_redirect",
        app.config.wechat_open_url,
        app.config.appid,
        urlencoding::encode(&redirect_uri(&app.config.public_url, next)),
    );
    Ok(found(&location))
}

/// A 302, as WeChat's own redirects are (axum's `Redirect::to` is a 303).
pub(crate) fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    next: Option<String>,
}

/// The browser a callback came from: its session, its cookies and its form token.
struct Visit {
    session: Session,
    cookies: Cookies,
    csrf: Csrf,
    /// The authorizations it started, as its cookie listed them.
    pending: Pending,
}

async fn callback(
    State(app): State<AppState>,
    session: Session,
    cookies: Cookies,
    csrf: Csrf,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, AppError> {
    let next = local_path(query.next.as_deref());
    let verified = app
        .keys
        .state
        .verify(query.state.as_deref(), next, unix_now())
        .map_err(state_failure)?;
    let pending = Pending::read(&cookies, &app.keys);
    let signed_in = Follower::current(&session).await?;
    // "The session came back": this browser has used the portal before, so the state must be its own.
    let session_came_back = !pending.0.is_empty() || signed_in.is_some();
    let started_here = pending.0.contains(&verified.nonce);
    let row = new_state(&verified);

    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        // The follower pressed "refuse" (§6.2): the state is spent, nothing else is stored.
        app.store.consume_oauth_state(&row).await?;
        tracing::info!("the follower refused authorization");
        if verified.next == crate::web::oidc::RESUME {
            // Signing in to an app: the app hears `access_denied` from the provider.
            return Ok(found(&verified.next));
        }
        return Err(ErrorPage::new(
            StatusCode::FORBIDDEN,
            "未完成授权",
            "您没有同意授权，所以无法登录。如需登录，请重试并点击“允许”。",
            "You did not allow the authorization, so you are not signed in. Try again and tap Allow to sign in.",
        )
        .retry(login_path(verified.scope, &verified.next))
        .into());
    };
    let code_hash = hex::encode(Sha256::digest(code.as_bytes()));

    // A reload of the callback that signed this very session in.
    if let Some(follower) = &signed_in
        && follower.code_hash == code_hash
    {
        return Ok(found(&verified.next));
    }
    if session_came_back && !started_here {
        // Login CSRF, or a link shared from another phone: never sign this browser in with it.
        tracing::warn!("callback state was not started by this session; starting afresh");
        return Ok(found(&login_path(verified.scope, &verified.next)));
    }
    // Each claim may cost one of the account's code exchanges: a client sending junk codes gets a
    // small burst, then one a minute.
    let client = app.limits.client(&headers, peer);
    if let Err(retry_after) = app.limits.code_exchange.check(&client) {
        tracing::warn!(client, retry_after, "code exchanges limited");
        return Err(AppError::TooMany { retry_after });
    }

    let visit = Visit {
        session,
        cookies,
        csrf,
        pending,
    };
    match app.store.claim_oauth_state(&row, &code_hash).await? {
        Claim::Claimed(row) => exchange(&app, &visit, row, &code, &code_hash).await,
        Claim::Repeat(row) => repeat(&app, &visit, row, started_here, &code_hash).await,
        Claim::Reused => Err(state_failure(StateError::Invalid)),
        Claim::Unknown => Err(state_failure(StateError::Expired)),
    }
}

fn new_state(verified: &VerifiedState) -> NewState<'_> {
    NewState {
        nonce: &verified.nonce,
        scope: verified.scope,
        next: &verified.next,
        expires_at: verified.expires_at,
    }
}

/// The one exchange of a code: tokens, the profile for `snsapi_userinfo`, the row, the session.
async fn exchange(
    app: &AppState,
    visit: &Visit,
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
        return snapshot_page(app);
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
    let tell = app
        .subscriptions
        .wants(crate::events::EventType::OauthSignin)
        .then(|| {
            crate::events::oauth_signin(
                &grant.openid,
                grant.unionid.as_deref(),
                &grant.scope,
                profile.as_ref(),
            )
        });
    app.store
        .save_authorization(
            &row.nonce,
            &grant.openid,
            grant.unionid.as_deref(),
            &tokens_of(&grant),
            profile.as_ref(),
            tell.as_ref(),
        )
        .await?;
    if tell.is_some() {
        app.deliverer.wake();
    }
    sign_in(
        app,
        visit,
        &grant.openid,
        &grant.scope,
        code_hash,
        &row.nonce,
    )
    .await?;
    tracing::info!(scope = %grant.scope, "follower authorized");
    Ok(found(&row.next))
}

/// The same code again. Waits for the first arrival to finish; signs in only the browser that started
/// this authorization; anyone else starts afresh.
async fn repeat(
    app: &AppState,
    visit: &Visit,
    row: OAuthState,
    started_here: bool,
    code_hash: &str,
) -> Result<Response, AppError> {
    let deadline = tokio::time::Instant::now() + REPEAT_WAIT;
    let mut row = row;
    while row.outcome == Some(Outcome::Pending) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        match app.store.oauth_state(&row.nonce).await? {
            Some(fresh) => row = fresh,
            None => break,
        }
    }
    tracing::info!(
        outcome = row.outcome.map_or("none", Outcome::as_str),
        started_here,
        "repeated callback"
    );
    if let (true, Some(Outcome::Done), Some(openid)) =
        (started_here, row.outcome, row.openid.as_deref())
        && let Some(user) = app.store.user(openid).await?
    {
        let scope = user.scope.unwrap_or_else(|| row.scope.clone());
        sign_in(app, visit, openid, &scope, code_hash, &row.nonce).await?;
        return Ok(found(&row.next));
    }
    Ok(found(&login_path(&row.scope, &row.next)))
}

async fn sign_in(
    app: &AppState,
    visit: &Visit,
    openid: &str,
    scope: &str,
    code_hash: &str,
    nonce: &str,
) -> Result<(), AppError> {
    // A new session id and a new CSRF token at sign-in: an id or a form planted before (session
    // fixation) is worthless.
    visit.session.cycle_id().await.map_err(AppError::from)?;
    visit.csrf.renew();
    visit
        .pending
        .without(nonce)
        .write(&visit.cookies, &app.keys, app.config.is_https());
    visit
        .session
        .insert(
            FOLLOWER,
            Follower {
                openid: openid.to_owned(),
                scope: scope.to_owned(),
                code_hash: code_hash.to_owned(),
                signed_in_at: unix_now(),
            },
        )
        .await
        .map_err(AppError::from)
}

/// The profile for a userinfo-scope token.
pub(crate) async fn fetch_profile(
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
pub(crate) fn tokens_of(grant: &Grant) -> Tokens {
    let now = unix_now();
    Tokens {
        scope: grant.scope.clone(),
        access_token: grant.access_token.clone(),
        access_token_expires_at: now + grant.expires_in,
        refresh_token: grant.refresh_token.clone(),
        refresh_token_expires_at: now + REFRESH_TOKEN_LIFETIME,
    }
}

async fn logout(
    session: Session,
    csrf: Csrf,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    csrf.check(&form.csrf)?;
    Follower::sign_out(&session).await?;
    csrf.renew();
    Ok(Redirect::to("/").into_response())
}

/// The page for a state that cannot be used.
/// For a follower who opened the page from a Moments snapshot (§6.3): nothing is stored.
pub(crate) fn snapshot_page(app: &AppState) -> Result<Response, AppError> {
    render(&Notice {
        layout: Layout::new(app, false),
        icon: "weui-icon-info",
        title: "请打开完整页面",
        zh: "您正在浏览朋友圈中的快照页面，无法登录。请点击屏幕下方的“打开完整页面”后再试。",
        en: "This is a Moments snapshot, where signing in is not possible. Tap “open the full page” at the bottom of the screen and try again.",
    })
}

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
pub(crate) fn upstream_failure(call: &str, e: &ApiError, retry: &str) -> ErrorPage {
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
        ApiError::Store(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "服务暂时不可用",
            "服务暂时不可用，请稍后重试。",
            "The service is temporarily unavailable. Please try again in a moment.",
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
