//! The follower's pages: the guide (`/`), the profile (`/me`) with refresh and delete, the error page,
//! and the static assets compiled into the binary; web authorization in [`oauth`].

pub mod oauth;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::Session;

use crate::store::{Tokens, User};
use crate::time::beijing_time;
use crate::time::unix_now;
use crate::upstream::ApiError;
use crate::web::error::{AppError, ErrorPage};
use crate::web::portal::oauth::{
    DEFAULT_NEXT, Follower, SCOPE_USERINFO, fetch_profile, found, login_path, tokens_of,
    upstream_failure,
};
use crate::web::sessions::{Csrf, CsrfForm};
use crate::web::state::AppState;
use crate::web::ui::{Layout, Notice, in_wechat, is_image_url, render};

pub fn router() -> Router<AppState> {
    // The follower's own pages show their profile: never kept by the browser or anything between.
    let personal = Router::new()
        .route("/me", get(me))
        .route("/me/refresh", axum::routing::post(refresh))
        .route("/me/delete", get(confirm_delete).post(delete))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    Router::new()
        .route("/", get(guide))
        .route("/qr.svg", get(qr))
        .route("/static/{file}", get(asset))
        .merge(personal)
}

#[derive(Template)]
#[template(path = "pages/guide.html")]
struct GuideTemplate {
    layout: Layout,
    in_wechat: bool,
    page_url: String,
    /// The image a share of the page shows (absolute, as WeChat requires).
    share_image: String,
}

async fn guide(
    State(app): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let signed_in = Follower::current(&session).await?.is_some();
    render(&GuideTemplate {
        layout: Layout::new(&app, signed_in),
        in_wechat: in_wechat(&headers),
        page_url: format!("{}/", app.config.public_url),
        share_image: format!("{}/static/logo.svg", app.config.public_url),
    })
}

/// The guide page's address as a QR code, to scan with WeChat from a desktop browser.
async fn qr(State(app): State<AppState>) -> Response {
    let url = format!("{}/", app.config.public_url);
    match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(false)
                .build();
            (
                [
                    (header::CONTENT_TYPE, "image/svg+xml"),
                    (header::CACHE_CONTROL, "public, max-age=3600"),
                ],
                svg,
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "the public URL does not fit in a QR code");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "pages/me.html")]
struct MeTemplate {
    layout: Layout,
    avatar: Option<String>,
    nickname: Option<String>,
    basic_only: bool,
    rows: Vec<(&'static str, String)>,
    privileges: Vec<String>,
    csrf: String,
}

/// The signed-in follower and their row, or where to send the browser instead.
async fn signed_in_user(
    app: &AppState,
    session: &Session,
) -> Result<Result<User, Response>, AppError> {
    let Some(follower) = Follower::current(session).await? else {
        return Ok(Err(found(&login_path(SCOPE_USERINFO, "/me"))));
    };
    match app.store.user(&follower.openid).await? {
        Some(user) if user.scope.is_some() => Ok(Ok(user)),
        // Erased (here or on another device): the session is worthless.
        _ => {
            Follower::sign_out(session).await?;
            Ok(Err(found(&login_path(SCOPE_USERINFO, "/me"))))
        }
    }
}

async fn me(
    State(app): State<AppState>,
    session: Session,
    csrf: Csrf,
) -> Result<Response, AppError> {
    let user = match signed_in_user(&app, &session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let basic_only = user.scope.as_deref() != Some(SCOPE_USERINFO) && user.nickname.is_none();
    let mut rows = vec![("OpenID", user.openid.clone())];
    if !basic_only {
        rows.push(("性别 · Gender", sex_label(user.sex).to_owned()));
        let region: Vec<&str> = [&user.country, &user.province, &user.city]
            .into_iter()
            .filter_map(|s| s.as_deref())
            .filter(|s| !s.is_empty())
            .collect();
        rows.push((
            "地区 · Region",
            if region.is_empty() {
                "未填写 · not set".to_owned()
            } else {
                region.join(" ")
            },
        ));
    }
    if let Some(unionid) = &user.unionid {
        rows.push(("UnionID", unionid.clone()));
    }
    if let Some(at) = user.last_authorized_at {
        rows.push(("授权时间 · Authorized", beijing_time(at)));
    }
    rows.push((
        "关注公众号 · Following",
        if user.subscribed {
            "是 · yes"
        } else {
            "否 · no"
        }
        .to_owned(),
    ));
    let privileges = user
        .privilege
        .as_deref()
        .and_then(|p| serde_json::from_str::<Vec<String>>(p).ok())
        .unwrap_or_default();
    render(&MeTemplate {
        layout: Layout::new(&app, true),
        avatar: user.headimgurl.filter(|u| is_image_url(u)),
        nickname: user.nickname.filter(|n| !n.is_empty()),
        basic_only,
        rows,
        privileges,
        csrf: csrf.token(),
    })
}

fn sex_label(sex: Option<i64>) -> &'static str {
    match sex {
        Some(1) => "男 · male",
        Some(2) => "女 · female",
        _ => "未填写 · not set",
    }
}

/// "Refresh my profile": the stored token, renewed with the refresh token when it has expired (by the
/// clock or by WeChat's 42001), and back through authorization only when the refresh token is dead too.
async fn refresh(
    State(app): State<AppState>,
    session: Session,
    csrf: Csrf,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    csrf.check(&form.csrf)?;
    let user = match signed_in_user(&app, &session).await? {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect),
    };
    let reauthorize = found(&login_path(SCOPE_USERINFO, "/me"));
    if user.scope.as_deref() != Some(SCOPE_USERINFO) {
        return Ok(reauthorize);
    }
    let stored = stored_tokens(&user);
    // The stored access token while the clock says it is good; after that, or after WeChat's 42001, the
    // refresh token's (once).
    let mut usable = stored
        .clone()
        .filter(|t| t.access_token_expires_at > unix_now() + 60);
    let mut renewed = false;
    let (current, profile) = loop {
        let tokens = match usable.take() {
            Some(tokens) => tokens,
            None => {
                renewed = true;
                match renew(&app, &user, stored.as_ref()).await {
                    Renewal::Renewed(tokens) => tokens,
                    Renewal::Dead => return Ok(reauthorize),
                    Renewal::Failed(page) => return Err(page.into()),
                }
            }
        };
        match fetch_profile(&app, &tokens.access_token, &user.openid, None).await {
            Ok(profile) => break (tokens, profile),
            Err(ApiError::Api {
                errcode: 42001 | 40001,
                ..
            }) if !renewed => {}
            Err(e) => return Err(upstream_failure("userinfo", &e, "/me").into()),
        }
    };
    app.store
        .save_refresh(&user.openid, &current, Some(&profile))
        .await?;
    Ok(Redirect::to("/me").into_response())
}

fn stored_tokens(user: &User) -> Option<Tokens> {
    Some(Tokens {
        scope: user.scope.clone()?,
        access_token: user.access_token.clone()?,
        access_token_expires_at: user.access_token_expires_at?,
        refresh_token: user.refresh_token.clone()?,
        refresh_token_expires_at: user.refresh_token_expires_at?,
    })
}

enum Renewal {
    Renewed(Tokens),
    /// The refresh token has expired or was revoked: only a new authorization helps.
    Dead,
    Failed(ErrorPage),
}

async fn renew(app: &AppState, user: &User, tokens: Option<&Tokens>) -> Renewal {
    let Some(tokens) = tokens.filter(|t| t.refresh_token_expires_at > unix_now()) else {
        return Renewal::Dead;
    };
    match app.sns.refresh(&tokens.refresh_token).await {
        Ok(grant) if grant.openid == user.openid => {
            let mut renewed = tokens_of(&grant);
            // A refresh does not extend the refresh token's 30 days.
            renewed.refresh_token_expires_at = tokens.refresh_token_expires_at;
            Renewal::Renewed(renewed)
        }
        Ok(_) => Renewal::Dead,
        Err(ApiError::Api {
            errcode: 40030 | 42002 | 42007 | 40001 | 40003 | 40029,
            ..
        }) => Renewal::Dead,
        Err(e) => Renewal::Failed(upstream_failure("refresh_token", &e, "/me")),
    }
}

#[derive(Template)]
#[template(path = "pages/delete.html")]
struct DeleteTemplate {
    layout: Layout,
    csrf: String,
}

async fn confirm_delete(
    State(app): State<AppState>,
    session: Session,
    csrf: Csrf,
) -> Result<Response, AppError> {
    if let Err(redirect) = signed_in_user(&app, &session).await? {
        return Ok(redirect);
    }
    render(&DeleteTemplate {
        layout: Layout::new(&app, true),
        csrf: csrf.token(),
    })
}

async fn delete(
    State(app): State<AppState>,
    session: Session,
    csrf: Csrf,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    csrf.check(&form.csrf)?;
    let Some(follower) = Follower::current(&session).await? else {
        return Ok(found(&login_path(SCOPE_USERINFO, DEFAULT_NEXT)));
    };
    app.store.erase_profile(&follower.openid).await?;
    Follower::sign_out(&session).await?;
    csrf.renew();
    tracing::info!("a follower erased their profile");
    render(&Notice {
        layout: Layout::new(&app, false),
        icon: "weui-icon-success",
        title: "资料已删除",
        zh: "您分享的资料和登录凭证已经删除，您也已退出登录。",
        en: "What you shared and your sign-in tokens are erased, and you are signed out.",
    })
}

/// Static files, compiled in: `(name, content type, bytes)`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "weui-2.6.26.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../static/weui-2.6.26.min.css"),
    ),
    (
        "wxportal.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../static/wxportal.css"),
    ),
    (
        "share.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../static/share.js"),
    ),
    (
        "logo.svg",
        "image/svg+xml",
        include_bytes!("../../../static/logo.svg"),
    ),
    (
        "avatar-1.svg",
        "image/svg+xml",
        include_bytes!("../../../static/avatar-1.svg"),
    ),
    (
        "avatar-2.svg",
        "image/svg+xml",
        include_bytes!("../../../static/avatar-2.svg"),
    ),
    (
        "avatar-3.svg",
        "image/svg+xml",
        include_bytes!("../../../static/avatar-3.svg"),
    ),
    (
        "avatar-4.svg",
        "image/svg+xml",
        include_bytes!("../../../static/avatar-4.svg"),
    ),
];

async fn asset(Path(file): Path<String>) -> Response {
    let Some((name, content_type, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // A versioned name never changes content; the rest may change with a release.
    let cache = if name.starts_with("weui-") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=3600"
    };
    (
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, cache),
        ],
        *bytes,
    )
        .into_response()
}
