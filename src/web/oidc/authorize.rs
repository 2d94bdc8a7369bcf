//! `/oidc/authorize`: a follower signs in to one of the account's apps (OIDC Core §3.1.2).
//!
//! The request is checked in the spec's order: an unknown client or a redirect URI not registered for
//! it is an error page and never a redirect (RFC 9700 §4.1: no open redirector); every later problem goes
//! back to the app as `error=…`. A follower the portal already knows (signed in, with the profile the app
//! asks for, recently enough) goes straight back with a code: no second WeChat round trip. Otherwise the
//! request waits in a short-lived signed cookie while the portal signs the follower in through WeChat
//! (`snsapi_base`, or `snsapi_userinfo` when the app asks for `profile`) and comes back to
//! `/oidc/resume`: nothing is written for a visitor until WeChat has vouched for them.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tower_cookies::Cookies;
use tower_sessions::Session;
use tower_sessions::cookie::{Cookie, SameSite};

use super::Params;
use crate::oidc::{
    Approved, ErrorCode, OidcError, covers, known_scope, valid_challenge, wants_profile,
};
use crate::store::Client;
use crate::time::unix_now;
use crate::web::error::{AppError, ErrorPage};
use crate::web::limits;
use crate::web::portal::oauth::{Follower, SCOPE_BASE, SCOPE_USERINFO, found, login_path};
use crate::web::sessions::Csrf;
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};

/// The cookie holding the request while the follower signs in or decides.
const PENDING_COOKIE: &str = "wxportal_oidc";
/// How long a follower has to sign in and come back.
const PENDING_LIFETIME_SECS: i64 = 600;
/// Bounds on what an app may send (the request travels in a cookie).
const MAX_STATE: usize = 512;
const MAX_NONCE: usize = 255;
/// `max_age` beyond ten years is a mistake.
const MAX_MAX_AGE: i64 = 10 * 365 * 86_400;

/// Starting a sign-in for an app is limited per client as starting one for the portal is
/// (`WXPORTAL_LIMIT_AUTH_LOGIN`): each code it issues is a row.
pub(super) fn router(app: &AppState) -> Router<AppState> {
    let limited = || {
        axum::middleware::from_fn_with_state(
            (std::sync::Arc::clone(&app.limits), limits::Route::AuthLogin),
            limits::limit,
        )
    };
    Router::new()
        .route(
            "/oidc/authorize",
            get(authorize).post(authorize_post).route_layer(limited()),
        )
        .route(super::RESUME, get(resume).route_layer(limited()))
        .route("/oidc/consent", post(consent).route_layer(limited()))
}

/// An authorization request that passed its checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuthRequest {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    prompt_none: bool,
    prompt_login: bool,
    prompt_consent: bool,
    max_age: Option<i64>,
    /// When the request arrived: `prompt=login` wants a sign-in after it.
    started_at: i64,
}

/// Why a request was refused: a page when there is nowhere safe to send the follower, else back to the
/// app with the error.
enum Refusal {
    Page(ErrorPage),
    Back {
        redirect_uri: String,
        state: Option<String>,
        error: OidcError,
    },
}

fn page(zh: &str, en: &str) -> Refusal {
    Refusal::Page(ErrorPage::new(StatusCode::BAD_REQUEST, "无法登录", zh, en))
}

/// `redirect_uri` with `params` added to its query.
fn with_query(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    format!("{redirect_uri}{separator}{query}")
}

impl Refusal {
    fn respond(self, issuer: &str) -> Result<Response, AppError> {
        match self {
            Self::Page(page) => Err(page.into()),
            Self::Back {
                redirect_uri,
                state,
                error,
            } => {
                tracing::info!(error = error.code.as_str(), description = %error.description, "authorization refused");
                let mut params = vec![
                    ("error", error.code.as_str()),
                    ("error_description", error.description.as_str()),
                ];
                if let Some(state) = &state {
                    params.push(("state", state));
                }
                // RFC 9207: the issuer in every response, against mix-up attacks.
                params.push(("iss", issuer));
                Ok(found(&with_query(&redirect_uri, &params)))
            }
        }
    }
}

/// Checks a request in OIDC Core §3.1.2.2's order.
async fn parse(app: &AppState, params: &Params) -> Result<(AuthRequest, Client), Refusal> {
    let Some(client_id) = params.get("client_id") else {
        return Err(page(
            "登录链接缺少应用标识（client_id）。请返回应用重试。",
            "The sign-in link has no client_id. Go back to the app and try again.",
        ));
    };
    let client = match app.store.client(client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            tracing::warn!("authorization for an unknown client");
            return Err(page(
                "这个应用没有在公众号登记，无法用微信登录。",
                "This app is not registered with the account, so it cannot sign you in with WeChat.",
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "reading the client failed");
            return Err(Refusal::Page(ErrorPage::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "服务暂时不可用",
                "服务暂时不可用，请稍后重试。",
                "The service is temporarily unavailable. Please try again in a moment.",
            )));
        }
    };
    let Some(redirect_uri) = params
        .get("redirect_uri")
        .filter(|uri| client.redirect_uris.iter().any(|r| r == uri))
    else {
        tracing::warn!(client = %client.client_id, "authorization with an unregistered redirect_uri");
        return Err(page(
            "登录链接的返回地址（redirect_uri）没有为这个应用登记，为了您的安全，登录已停止。",
            "The link's return address (redirect_uri) is not registered for this app; for your safety the sign-in stopped here.",
        ));
    };
    let state = params.get("state").map(str::to_owned);
    let back = |code: ErrorCode, description: &str| Refusal::Back {
        redirect_uri: redirect_uri.to_owned(),
        state: state.clone().filter(|s| s.len() <= MAX_STATE),
        error: OidcError::new(code, description),
    };
    if params.get("request").is_some() {
        return Err(back(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(back(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => return Err(back(ErrorCode::InvalidRequest, "response_type is missing")),
        Some(_) => {
            return Err(back(
                ErrorCode::UnsupportedResponseType,
                "only the authorization code flow (response_type=code) is supported",
            ));
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(back(
            ErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(back(
            ErrorCode::InvalidRequest,
            "state is longer than 512 characters",
        ));
    }
    let nonce = params.get("nonce");
    if nonce.is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(back(
            ErrorCode::InvalidRequest,
            "nonce is longer than 255 characters",
        ));
    }
    let scope = known_scope(params.get("scope").unwrap_or_default())
        .map_err(|e| back(e.code, &e.description))?;
    let code_challenge = params.get("code_challenge");
    match (code_challenge, params.get("code_challenge_method")) {
        (None, None) if client.is_public() => {
            return Err(back(
                ErrorCode::InvalidRequest,
                "a public client must use PKCE (code_challenge with S256)",
            ));
        }
        (None, None) => {}
        (Some(challenge), Some("S256")) if valid_challenge(challenge) => {}
        (Some(_), Some("S256")) => {
            return Err(back(
                ErrorCode::InvalidRequest,
                "code_challenge is not an S256 challenge",
            ));
        }
        (None, Some(_)) => {
            return Err(back(
                ErrorCode::InvalidRequest,
                "code_challenge_method without code_challenge",
            ));
        }
        // Absent, the method is `plain` (RFC 7636 §4.3), which gives no protection.
        (Some(_), _) => {
            return Err(back(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
    }
    let prompts: Vec<&str> = params
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return Err(back(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(seconds) if (0..=MAX_MAX_AGE).contains(&seconds) => Some(seconds),
            _ => {
                return Err(back(
                    ErrorCode::InvalidRequest,
                    "max_age is not a number of seconds",
                ));
            }
        },
    };
    Ok((
        AuthRequest {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            scope,
            state,
            nonce: nonce.map(str::to_owned),
            code_challenge: code_challenge.map(str::to_owned),
            prompt_none,
            prompt_login: prompts.contains(&"login"),
            prompt_consent: prompts.contains(&"consent"),
            max_age,
            started_at: unix_now(),
        },
        client,
    ))
}

/// The browser a request came from.
struct Visit {
    session: Session,
    cookies: Cookies,
    csrf: Csrf,
}

async fn authorize(
    State(app): State<AppState>,
    session: Session,
    cookies: Cookies,
    csrf: Csrf,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(e) => {
            return Err(ErrorPage::new(
                StatusCode::BAD_REQUEST,
                "无法登录",
                "登录链接的格式不正确。",
                &format!("The sign-in link is malformed: {}.", e.description),
            )
            .into());
        }
    };
    let (request, client) = match parse(&app, &params).await {
        Ok(parsed) => parsed,
        Err(refusal) => return refusal.respond(&app.oidc.issuer),
    };
    let visit = Visit {
        session,
        cookies,
        csrf,
    };
    proceed(&app, &visit, request, &client, false).await
}

/// OIDC Core §3.1.2.1 allows the request as a POSTed form. The session cookie is `SameSite=Lax` and does
/// not come with another site's POST, so the same parameters go on as a GET.
async fn authorize_post(body: Bytes) -> Result<Response, AppError> {
    let Ok(params) = Params::parse(&body) else {
        return Err(ErrorPage::new(
            StatusCode::BAD_REQUEST,
            "无法登录",
            "登录请求的格式不正确。",
            "The sign-in request is malformed.",
        )
        .into());
    };
    let query = serde_urlencoded::to_string(&params.0).unwrap_or_default();
    Ok(Redirect::to(&format!("/oidc/authorize?{query}")).into_response())
}

/// Back from signing in through WeChat: the request waiting in the cookie goes on.
async fn resume(
    State(app): State<AppState>,
    session: Session,
    cookies: Cookies,
    csrf: Csrf,
) -> Result<Response, AppError> {
    let visit = Visit {
        session,
        cookies,
        csrf,
    };
    let (request, client) = pending(&app, &visit).await?;
    proceed(&app, &visit, request, &client, true).await
}

/// The request waiting in this browser's cookie, with its client (still registered, the URI still its).
async fn pending(app: &AppState, visit: &Visit) -> Result<(AuthRequest, Client), AppError> {
    let expired = || -> AppError {
        ErrorPage::new(
            StatusCode::BAD_REQUEST,
            "登录已超时",
            "这次登录已超时或已完成。请返回应用，重新点击“用微信登录”。",
            "This sign-in has timed out or is already finished. Go back to the app and tap “Sign in with WeChat” again.",
        )
        .into()
    };
    let request: AuthRequest = visit
        .cookies
        .signed(&app.keys.cookie)
        .get(PENDING_COOKIE)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c.value()).ok())
        .and_then(|json| serde_json::from_slice(&json).ok())
        .filter(|r: &AuthRequest| r.started_at + PENDING_LIFETIME_SECS > unix_now())
        .ok_or_else(expired)?;
    let client = app
        .store
        .client(&request.client_id)
        .await?
        .filter(|c| c.redirect_uris.contains(&request.redirect_uri))
        .ok_or_else(expired)?;
    Ok((request, client))
}

fn keep_pending(app: &AppState, visit: &Visit, request: &AuthRequest) {
    let value = URL_SAFE_NO_PAD.encode(serde_json::to_vec(request).unwrap_or_default());
    let mut cookie = Cookie::new(PENDING_COOKIE, value);
    cookie.set_path("/oidc");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(app.config.is_https());
    cookie.set_max_age(time::Duration::seconds(PENDING_LIFETIME_SECS));
    visit.cookies.signed(&app.keys.cookie).add(cookie);
}

fn drop_pending(app: &AppState, visit: &Visit) {
    if visit.cookies.get(PENDING_COOKIE).is_some() {
        let mut cookie = Cookie::new(PENDING_COOKIE, "");
        cookie.set_path("/oidc");
        cookie.set_max_age(time::Duration::ZERO);
        visit.cookies.signed(&app.keys.cookie).add(cookie);
    }
}

fn back(request: &AuthRequest, code: ErrorCode, description: &str) -> Refusal {
    Refusal::Back {
        redirect_uri: request.redirect_uri.clone(),
        state: request.state.clone(),
        error: OidcError::new(code, description),
    }
}

/// Signs the follower in if needed, asks for consent if needed, and sends them back with a code.
async fn proceed(
    app: &AppState,
    visit: &Visit,
    request: AuthRequest,
    client: &Client,
    after_sign_in: bool,
) -> Result<Response, AppError> {
    let issuer = &app.oidc.issuer;
    let follower = Follower::current(&visit.session).await?;
    let now = unix_now();
    let user = match &follower {
        Some(f) => app.store.user(&f.openid).await?,
        None => None,
    };
    let profile_missing =
        wants_profile(&request.scope) && user.as_ref().is_none_or(|u| u.nickname.is_none());
    let stale = follower.as_ref().is_none_or(|f| {
        // prompt=login: a sign-in after this request, so at least one more WeChat round trip.
        (request.prompt_login && (!after_sign_in || f.signed_in_at < request.started_at))
            || request
                .max_age
                .is_some_and(|age| now - f.signed_in_at > age)
    });
    let follower = match follower {
        Some(f) if !stale && !profile_missing => f,
        _ => {
            if request.prompt_none {
                return back(
                    &request,
                    ErrorCode::LoginRequired,
                    "the follower must sign in with WeChat first",
                )
                .respond(issuer);
            }
            if after_sign_in {
                // Back from WeChat and still not enough: never loop.
                drop_pending(app, visit);
                return back(
                    &request,
                    ErrorCode::AccessDenied,
                    "the sign-in with WeChat did not complete",
                )
                .respond(issuer);
            }
            keep_pending(app, visit, &request);
            let wechat_scope = if wants_profile(&request.scope) {
                SCOPE_USERINFO
            } else {
                SCOPE_BASE
            };
            return Ok(found(&login_path(wechat_scope, super::RESUME)));
        }
    };
    let remembered = if client.consent {
        app.store
            .consent(&client.client_id, &follower.openid)
            .await?
            .is_some_and(|granted| covers(&granted, &request.scope))
    } else {
        true
    };
    if request.prompt_consent || !remembered {
        if request.prompt_none {
            return back(
                &request,
                ErrorCode::ConsentRequired,
                "the follower has not consented to this app",
            )
            .respond(issuer);
        }
        keep_pending(app, visit, &request);
        return consent_page(app, visit, &request, client);
    }
    finish(app, visit, &request, client, &follower).await
}

async fn finish(
    app: &AppState,
    visit: &Visit,
    request: &AuthRequest,
    client: &Client,
    follower: &Follower,
) -> Result<Response, AppError> {
    let code = app
        .oidc
        .issue_code(&Approved {
            client,
            openid: &follower.openid,
            redirect_uri: &request.redirect_uri,
            scope: &request.scope,
            nonce: request.nonce.as_deref(),
            code_challenge: request.code_challenge.as_deref(),
            auth_time: follower.signed_in_at,
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "issuing a code failed");
            AppError::Internal("issuing a code failed")
        })?;
    drop_pending(app, visit);
    tracing::info!(client = %client.client_id, "follower signed in to an app");
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = &request.state {
        params.push(("state", state));
    }
    params.push(("iss", &app.oidc.issuer));
    Ok(found(&with_query(&request.redirect_uri, &params)))
}

#[derive(Template)]
#[template(path = "pages/consent.html")]
struct ConsentTemplate<'a> {
    layout: Layout,
    csrf: String,
    app_name: &'a str,
    host: String,
    profile: bool,
}

/// The consent page. Its form posts here and the answer redirects to the app, so the page's
/// `form-action` names the app's origin too (browsers apply it to the redirect).
fn consent_page(
    app: &AppState,
    visit: &Visit,
    request: &AuthRequest,
    client: &Client,
) -> Result<Response, AppError> {
    let target = reqwest::Url::parse(&request.redirect_uri).ok();
    let origin = target
        .as_ref()
        .map_or_else(String::new, |url| match url.host_str() {
            Some(_) => url.origin().ascii_serialization(),
            None => format!("{}:", url.scheme()),
        });
    let mut response = render(&ConsentTemplate {
        layout: Layout::new(app, true),
        csrf: visit.csrf.token(),
        app_name: &client.name,
        host: target
            .as_ref()
            .and_then(|u| u.host_str())
            .unwrap_or_default()
            .to_owned(),
        profile: wants_profile(&request.scope),
    })?;
    super::allow_forms_to(&mut response, &origin);
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// The follower's answer on the consent page.
async fn consent(
    State(app): State<AppState>,
    session: Session,
    cookies: Cookies,
    csrf: Csrf,
    Form(form): Form<ConsentForm>,
) -> Result<Response, AppError> {
    csrf.check(&form.csrf)?;
    let visit = Visit {
        session,
        cookies,
        csrf,
    };
    let (request, client) = pending(&app, &visit).await?;
    let Some(follower) = Follower::current(&visit.session).await? else {
        drop_pending(&app, &visit);
        return back(
            &request,
            ErrorCode::LoginRequired,
            "the follower is no longer signed in",
        )
        .respond(&app.oidc.issuer);
    };
    if form.decision != "allow" {
        drop_pending(&app, &visit);
        return back(&request, ErrorCode::AccessDenied, "the follower declined")
            .respond(&app.oidc.issuer);
    }
    let granted = match app
        .store
        .consent(&client.client_id, &follower.openid)
        .await?
    {
        Some(before) if covers(&request.scope, &before) || before.is_empty() => {
            request.scope.clone()
        }
        Some(before) => crate::oidc::known_scope(&format!("{before} {}", request.scope))
            .unwrap_or_else(|_| request.scope.clone()),
        None => request.scope.clone(),
    };
    app.store
        .save_consent(&client.client_id, &follower.openid, &granted)
        .await?;
    finish(&app, &visit, &request, &client, &follower).await
}
