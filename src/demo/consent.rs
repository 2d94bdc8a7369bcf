//! `open.weixin.qq.com/connect/oauth2/authorize` under `/_sim/open`: the consent page a follower sees,
//! which checks the request as WeChat does, lets them pick a sample follower, and returns to the portal
//! with a code from the stand-in WeChat (or without one on refusal).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::followers::{FOLLOWERS, SampleFollower};
use super::wechat::FakeWeChat;
use crate::web::error::{AppError, ErrorPage};
use crate::web::portal::oauth::{SCOPE_BASE, SCOPE_USERINFO, found};
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};

/// The authorize page, under [`super::OPEN_PATH`].
pub(super) fn routes() -> Router<AppState> {
    Router::new().route(
        "/_sim/open/connect/oauth2/authorize",
        get(consent).post(decide),
    )
}

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    appid: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
}

#[derive(Template)]
#[template(path = "demo/consent.html")]
struct ConsentTemplate<'a> {
    layout: Layout,
    followers: Vec<(usize, SampleFollower)>,
    redirect_uri: &'a str,
    state: &'a str,
    scope: &'a str,
    userinfo: bool,
}

/// The error WeChat's authorize page itself shows (§6.2): the follower never reaches the portal.
fn authorize_error(app: &AppState, code: u32, zh: &str, en: &str) -> Result<Response, AppError> {
    Err(ErrorPage::new(
        StatusCode::BAD_REQUEST,
        &format!("微信授权出错 ({code})"),
        zh,
        en,
    )
    .retry(format!("{}/", app.config.public_url))
    .into())
}

/// `open.weixin.qq.com/connect/oauth2/authorize`: checks the request as WeChat does, then asks.
async fn consent(
    State(app): State<AppState>,
    Query(q): Query<AuthorizeQuery>,
) -> Result<Response, AppError> {
    if q.appid.as_deref() != Some(app.config.appid.as_str()) {
        return authorize_error(
            &app,
            10016,
            "appid 不是公众号的 AppID。",
            "The appid is not this Official Account's.",
        );
    }
    let redirect_uri = q.redirect_uri.unwrap_or_default();
    let same_host = app.config.is_own_origin(&redirect_uri);
    if !same_host {
        return authorize_error(
            &app,
            10003,
            "redirect_uri 参数错误：域名与授权回调域名不一致。",
            "redirect_uri's domain differs from the authorized callback domain.",
        );
    }
    let scope = q.scope.unwrap_or_default();
    if q.response_type.as_deref() != Some("code")
        || ![SCOPE_BASE, SCOPE_USERINFO].contains(&scope.as_str())
    {
        return authorize_error(
            &app,
            10005,
            "scope 或 response_type 参数错误。",
            "The scope or response_type is not valid.",
        );
    }
    render(&ConsentTemplate {
        layout: Layout::new(&app, false),
        followers: FOLLOWERS.iter().copied().enumerate().collect(),
        redirect_uri: &redirect_uri,
        state: q.state.as_deref().unwrap_or_default(),
        userinfo: scope == SCOPE_USERINFO,
        scope: &scope,
    })
}

#[derive(Debug, Deserialize)]
struct Decision {
    follower: usize,
    decision: String,
    redirect_uri: String,
    state: String,
    scope: String,
}

/// The follower's choice: back to the portal with a fresh code, or without one on refusal.
async fn decide(
    State(app): State<AppState>,
    Extension(wechat): Extension<FakeWeChat>,
    Form(d): Form<Decision>,
) -> Result<Response, AppError> {
    // By parsed origin, as WeChat checks the authorized domain: a prefix would let
    // `http://127.0.0.1:8080.evil.example` through.
    let valid = app.config.is_own_origin(&d.redirect_uri);
    if !valid || d.follower >= FOLLOWERS.len() {
        return authorize_error(
            &app,
            10003,
            "redirect_uri 参数错误。",
            "redirect_uri is not valid.",
        );
    }
    let sep = if d.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let state = urlencoding::encode(&d.state);
    if d.decision != "allow" {
        return Ok(found(&format!("{}{sep}state={state}", d.redirect_uri)));
    }
    let code = wechat.issue_code(FOLLOWERS[d.follower].openid, &d.scope, false);
    Ok(found(&format!(
        "{}{sep}code={code}&state={state}",
        d.redirect_uri
    )))
}
