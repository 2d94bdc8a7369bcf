//! `/oidc/logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). The app sends the
//! follower here with the ID token it holds (`id_token_hint`); the portal's session ends and the
//! follower goes back to a `post_logout_redirect_uri` registered for that app, never anywhere else.
//! Without a hint that proves which app asks, the follower confirms on a page first (a bare link from
//! anywhere cannot sign them out).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use tower_sessions::Session;

use super::Params;
use crate::oidc::keys::verify;
use crate::store::Client;
use crate::web::error::{AppError, ErrorPage};
use crate::web::portal::oauth::{Follower, found};
use crate::web::sessions::Csrf;
use crate::web::state::AppState;
use crate::web::ui::{Layout, Notice, render};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/oidc/logout", get(logout_get).post(logout_post))
}

/// What a logout request asks, checked.
struct LogoutRequest {
    client: Option<Client>,
    /// The `sub` of the hint, a valid ID token of ours for `client`.
    hinted: Option<String>,
    /// Where to go afterwards: registered for `client`.
    redirect: Option<String>,
    /// The fields to carry through the confirmation form.
    fields: Vec<(String, String)>,
}

fn refused(zh: &str, en: &str) -> AppError {
    ErrorPage::new(StatusCode::BAD_REQUEST, "无法退出", zh, en).into()
}

async fn parse(app: &AppState, params: &Params) -> Result<LogoutRequest, AppError> {
    let mut client_id = params.get("client_id").map(str::to_owned);
    let mut hinted = None;
    if let Some(hint) = params.get("id_token_hint") {
        let jwks = app.oidc.keyring.jwks().await.map_err(|e| {
            tracing::error!(error = %e, "reading the signing keys failed");
            AppError::Internal("signing keys unavailable")
        })?;
        // An expired ID token is still a fine hint (§2): only the signature and issuer count.
        let claims = verify(hint, &jwks)
            .ok()
            .filter(|c| c["iss"] == app.oidc.issuer.as_str())
            .ok_or_else(|| {
                refused(
                    "退出链接中的凭证无效。",
                    "The logout link's id_token_hint is not a valid ID token from this account.",
                )
            })?;
        let aud = claims["aud"].as_str().map(str::to_owned);
        if client_id.is_some() && client_id != aud {
            return Err(refused(
                "退出链接中的应用与凭证不符。",
                "The logout link's client_id does not match its id_token_hint.",
            ));
        }
        client_id = aud;
        hinted = claims["sub"].as_str().map(str::to_owned);
    }
    let client = match &client_id {
        Some(id) => Some(app.store.client(id).await?.ok_or_else(|| {
            refused(
                "这个应用没有在公众号登记。",
                "This app is not registered with the account.",
            )
        })?),
        None => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client
                .as_ref()
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                tracing::warn!("logout with an unregistered post_logout_redirect_uri");
                return Err(refused(
                    "退出后的返回地址没有为这个应用登记，为了您的安全，已停止跳转。",
                    "The address to return to after logout is not registered for this app; for your safety you were not sent there.",
                ));
            }
            let mut target = uri.to_owned();
            if let Some(state) = params.get("state") {
                let separator = if target.contains('?') { '&' } else { '?' };
                target = format!("{target}{separator}state={}", urlencoding::encode(state));
            }
            Some(target)
        }
    };
    let fields = [
        "id_token_hint",
        "client_id",
        "post_logout_redirect_uri",
        "state",
    ]
    .iter()
    .filter_map(|name| params.get(name).map(|v| ((*name).to_owned(), v.to_owned())))
    .collect();
    Ok(LogoutRequest {
        client,
        hinted,
        redirect,
        fields,
    })
}

#[derive(Template)]
#[template(path = "pages/logout.html")]
struct ConfirmTemplate<'a> {
    layout: Layout,
    csrf: String,
    app_name: Option<&'a str>,
    fields: Vec<(String, String)>,
}

async fn logout_get(
    State(app): State<AppState>,
    session: Session,
    csrf: Csrf,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes())
        .map_err(|e| refused("退出链接的格式不正确。", &e.description))?;
    let request = parse(&app, &params).await?;
    // Signed out at once when nobody is signed in, or when the hint names the follower who is;
    // otherwise (no hint, or another follower's token) the follower confirms.
    let follower = Follower::current(&session).await?;
    let hint_is_theirs = match (&follower, &request.hinted, &request.client) {
        (Some(f), Some(sub), Some(client)) => {
            app.oidc
                .subject(&client.client_id, client.subject, &f.openid)
                == *sub
        }
        _ => false,
    };
    if follower.is_none() || hint_is_theirs {
        return sign_out(&app, &session, &csrf, request).await;
    }
    let origin = request
        .redirect
        .as_deref()
        .and_then(|uri| reqwest::Url::parse(uri).ok())
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default();
    let mut response = render(&ConfirmTemplate {
        layout: Layout::new(&app, true),
        csrf: csrf.token(),
        app_name: request.client.as_ref().map(|c| c.name.as_str()),
        fields: request.fields,
    })?;
    super::allow_forms_to(&mut response, &origin);
    Ok(response)
}

/// The confirmation form, or an app posting the logout request itself.
async fn logout_post(
    State(app): State<AppState>,
    session: Session,
    csrf: Csrf,
    body: Bytes,
) -> Result<Response, AppError> {
    let params =
        Params::parse(&body).map_err(|e| refused("退出请求的格式不正确。", &e.description))?;
    csrf.check(params.get("csrf").unwrap_or_default())?;
    let request = parse(&app, &params).await?;
    sign_out(&app, &session, &csrf, request).await
}

async fn sign_out(
    app: &AppState,
    session: &Session,
    csrf: &Csrf,
    request: LogoutRequest,
) -> Result<Response, AppError> {
    if Follower::current(session).await?.is_some() {
        Follower::sign_out(session).await?;
        csrf.renew();
        tracing::info!(
            client = request.client.as_ref().map_or("", |c| c.client_id.as_str()),
            "follower signed out by an app"
        );
    }
    match request.redirect {
        Some(target) => Ok(found(&target)),
        None => render(&Notice {
            layout: Layout::new(app, false),
            icon: "weui-icon-success",
            title: "已退出登录",
            zh: "您已退出公众号的登录。",
            en: "You are signed out of the account.",
        }),
    }
}
