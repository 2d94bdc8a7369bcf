//! `wxportal demo`'s stand-in for WeChat: `open.weixin.qq.com` (the consent page) under `/_sim/open`,
//! `api.weixin.qq.com` (the `sns` API and the account's `cgi-bin` calls) under `/_sim/api`, and a follower's
//! chat at `/_sim/chat`, where customer-service messages show up too and the pushed menu can be clicked.
//!
//! Mounted only by `wxportal demo` ([`crate::app::App::with_simulator`]), never under `serve`. It speaks the
//! real protocol over real HTTP — single-use codes that live 5 minutes, tokens that expire, `text/plain`
//! JSON and §6's error codes — so the demo runs the same portal code as production. The chat signs (and
//! in compatible mode encrypts) each message exactly as WeChat does and posts it to `/wechat`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use crate::time::unix_now;
use crate::web::AppState;
use crate::web::error::AppError;
use crate::web::portal::oauth::{SCOPE_BASE, SCOPE_USERINFO};
use crate::web::ui::{Layout, render};
use crate::wechat::MessageCrypto;
use crate::wechat::push::{Push, check_reply};

/// Where the simulator lives, relative to the public URL.
pub const OPEN_PATH: &str = "/_sim/open";
pub const API_PATH: &str = "/_sim/api";
/// A code lives 5 minutes and works once (§6.2); tokens live 2 hours, refresh tokens 30 days.
const CODE_LIFETIME: i64 = 300;
const ACCESS_LIFETIME: i64 = 7200;
const REFRESH_LIFETIME: i64 = 30 * 86_400;
const TRANSCRIPT_LEN: usize = 40;

/// A sample follower to authorize as.
#[derive(Debug, Clone, Copy)]
pub struct SampleFollower {
    pub openid: &'static str,
    pub nickname: &'static str,
    pub sex: i64,
    pub country: &'static str,
    pub province: &'static str,
    pub city: &'static str,
    pub avatar: &'static str,
    pub unionid: Option<&'static str>,
}

/// CJK, emoji, markup that must stay text, and the post-2021 placeholder profile.
pub const FOLLOWERS: [SampleFollower; 4] = [
    SampleFollower {
        openid: "oDemo0000000000000xiaoming",
        nickname: "小明",
        sex: 1,
        country: "中国",
        province: "广东",
        city: "深圳",
        avatar: "avatar-1.svg",
        unionid: Some("uDemo00000000000000xiaoming"),
    },
    SampleFollower {
        openid: "oDemo00000000000000000panda",
        nickname: "熊猫🐼竹子🎋",
        sex: 2,
        country: "中国",
        province: "四川",
        city: "成都",
        avatar: "avatar-2.svg",
        unionid: None,
    },
    SampleFollower {
        openid: "oDemo0000000000000000script",
        nickname: "<script>alert('hi')</script>",
        sex: 0,
        country: "",
        province: "",
        city: "",
        avatar: "avatar-3.svg",
        unionid: None,
    },
    SampleFollower {
        openid: "oDemo000000000000placeholder",
        nickname: "微信用户",
        sex: 0,
        country: "",
        province: "",
        city: "",
        avatar: "avatar-4.svg",
        unionid: None,
    },
];

#[derive(Debug, Clone)]
struct Issued {
    follower: usize,
    scope: String,
    issued_at: i64,
    used: bool,
}

#[derive(Debug, Clone)]
struct Token {
    follower: usize,
    scope: String,
    expires_at: i64,
}

/// A piece of an answer as WeChat shows it: text, or a link from an `<a href>` in a text reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub href: Option<String>,
}

/// Splits a text reply the way WeChat renders it: `<a href="http…">label</a>` becomes a link, everything
/// else stays text (and is escaped by the template).
pub fn segments(text: &str) -> Vec<Segment> {
    let plain = |t: &str| Segment {
        text: t.to_owned(),
        href: None,
    };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<a href=\"") {
        let after = &rest[start + 9..];
        let parsed = after.find("\">").and_then(|q| {
            let close = after[q + 2..].find("</a>")?;
            Some((&after[..q], &after[q + 2..q + 2 + close], q + 2 + close + 4))
        });
        match parsed {
            Some((href, label, used))
                if href.starts_with("http://") || href.starts_with("https://") =>
            {
                if start > 0 {
                    out.push(plain(&rest[..start]));
                }
                out.push(Segment {
                    text: label.to_owned(),
                    href: Some(href.to_owned()),
                });
                rest = &after[used..];
            }
            _ => {
                out.push(plain(&rest[..start + 9]));
                rest = after;
            }
        }
    }
    if !rest.is_empty() {
        out.push(plain(rest));
    }
    out
}

/// One line of the follower chat.
#[derive(Debug, Clone)]
pub struct ChatLine {
    pub follower: &'static str,
    /// What the follower sent; empty for a customer-service message the account sent on its own.
    pub sent: String,
    pub answer: Vec<Segment>,
    pub problems: Vec<String>,
    pub millis: u128,
}

/// The simulator's memory: codes, tokens and the chat, for this process only.
#[derive(Debug, Default)]
pub struct Simulator {
    codes: Mutex<HashMap<String, Issued>>,
    access: Mutex<HashMap<String, Token>>,
    refresh: Mutex<HashMap<String, Token>>,
    chat: Mutex<VecDeque<ChatLine>>,
    /// The account's access tokens and jsapi tickets issued, with their expiry.
    account_tokens: Mutex<HashMap<String, i64>>,
    /// The menu as last created (menu/create's JSON).
    menu: Mutex<Option<serde_json::Value>>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/_sim/open/connect/oauth2/authorize",
            get(consent).post(decide),
        )
        .route("/_sim/api/sns/oauth2/access_token", get(access_token))
        .route("/_sim/api/sns/oauth2/refresh_token", get(refresh_token))
        .route("/_sim/api/sns/userinfo", get(userinfo))
        .route("/_sim/api/sns/auth", get(check_token))
        .route("/_sim/api/cgi-bin/stable_token", post(stable_token))
        .route("/_sim/api/cgi-bin/token", get(classic_token))
        .route("/_sim/api/cgi-bin/ticket/getticket", get(ticket))
        .route("/_sim/api/cgi-bin/menu/create", post(menu_create))
        .route(
            "/_sim/api/cgi-bin/get_current_selfmenu_info",
            get(menu_current),
        )
        .route("/_sim/api/cgi-bin/menu/delete", get(menu_delete))
        .route("/_sim/api/cgi-bin/message/custom/send", post(custom_send))
        .route("/_sim/api/cgi-bin/user/info", get(user_info))
        .route("/_sim/chat", get(chat).post(send_chat))
        .layer(Extension(Arc::new(Simulator::default())))
}

fn random_token(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
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
    Err(crate::web::error::ErrorPage::new(
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
    Extension(sim): Extension<Arc<Simulator>>,
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
        return Ok(crate::web::portal::oauth::found(&format!(
            "{}{sep}state={state}",
            d.redirect_uri
        )));
    }
    let code = random_token("sim");
    sim.codes.lock().expect("simulator lock").insert(
        code.clone(),
        Issued {
            follower: d.follower,
            scope: d.scope.clone(),
            issued_at: unix_now(),
            used: false,
        },
    );
    Ok(crate::web::portal::oauth::found(&format!(
        "{}{sep}code={code}&state={state}",
        d.redirect_uri
    )))
}

/// WeChat's `text/plain` JSON.
fn wechat_json(value: serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], value.to_string()).into_response()
}

fn wechat_error(errcode: i64, errmsg: &str) -> Response {
    wechat_json(serde_json::json!({ "errcode": errcode, "errmsg": errmsg }))
}

fn grant(sim: &Simulator, follower: usize, scope: &str, refresh: Option<String>) -> Response {
    let now = unix_now();
    let access = random_token("simAT");
    sim.access.lock().expect("simulator lock").insert(
        access.clone(),
        Token {
            follower,
            scope: scope.to_owned(),
            expires_at: now + ACCESS_LIFETIME,
        },
    );
    let refresh_token = refresh.unwrap_or_else(|| {
        let rt = random_token("simRT");
        let token = Token {
            follower,
            scope: scope.to_owned(),
            expires_at: now + REFRESH_LIFETIME,
        };
        sim.refresh
            .lock()
            .expect("simulator lock")
            .insert(rt.clone(), token);
        rt
    });
    let f = &FOLLOWERS[follower];
    let mut body = serde_json::json!({
        "access_token": access,
        "expires_in": ACCESS_LIFETIME,
        "refresh_token": refresh_token,
        "openid": f.openid,
        "scope": scope,
    });
    if let Some(unionid) = f.unionid {
        body["unionid"] = unionid.into();
    }
    wechat_json(body)
}

async fn access_token(
    State(app): State<AppState>,
    Extension(sim): Extension<Arc<Simulator>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("appid") != Some(&app.config.appid) {
        return wechat_error(40013, "invalid appid");
    }
    let secret_ok = app
        .config
        .appsecret
        .as_ref()
        .is_some_and(|s| q.get("secret").map(String::as_str) == Some(s.expose()));
    if !secret_ok {
        return wechat_error(40125, "invalid appsecret");
    }
    let Some(code) = q.get("code") else {
        return wechat_error(41008, "missing code");
    };
    let issued = {
        let mut codes = sim.codes.lock().expect("simulator lock");
        match codes.get_mut(code) {
            None => return wechat_error(40029, "invalid code"),
            Some(i) if i.used => return wechat_error(40163, "code been used"),
            Some(i) if unix_now() - i.issued_at > CODE_LIFETIME => {
                return wechat_error(42003, "code expired");
            }
            Some(i) => {
                i.used = true;
                i.clone()
            }
        }
    };
    grant(&sim, issued.follower, &issued.scope, None)
}

async fn refresh_token(
    Extension(sim): Extension<Arc<Simulator>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let found = q.get("refresh_token").and_then(|rt| {
        sim.refresh
            .lock()
            .expect("simulator lock")
            .get(rt)
            .cloned()
            .map(|t| (rt.clone(), t))
    });
    match found {
        None => wechat_error(40030, "invalid refresh_token"),
        Some((_, t)) if t.expires_at < unix_now() => wechat_error(42002, "refresh_token expired"),
        Some((rt, t)) => grant(&sim, t.follower, &t.scope, Some(rt)),
    }
}

/// An access token's follower, or WeChat's error for it.
fn token_of(sim: &Simulator, q: &HashMap<String, String>) -> Result<Token, (i64, &'static str)> {
    let token = q
        .get("access_token")
        .and_then(|t| sim.access.lock().expect("simulator lock").get(t).cloned())
        .ok_or((
            40001,
            "invalid credential, access_token is invalid or not latest",
        ))?;
    if token.expires_at < unix_now() {
        return Err((42001, "access_token expired"));
    }
    if q.get("openid").map(String::as_str) != Some(FOLLOWERS[token.follower].openid) {
        return Err((40003, "invalid openid"));
    }
    Ok(token)
}

async fn userinfo(
    State(app): State<AppState>,
    Extension(sim): Extension<Arc<Simulator>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = match token_of(&sim, &q) {
        Ok(t) => t,
        Err((code, msg)) => return wechat_error(code, msg),
    };
    if token.scope != SCOPE_USERINFO {
        return wechat_error(48001, "api unauthorized");
    }
    let f = &FOLLOWERS[token.follower];
    let mut body = serde_json::json!({
        "openid": f.openid,
        "nickname": f.nickname,
        "sex": f.sex,
        "province": f.province,
        "city": f.city,
        "country": f.country,
        "headimgurl": format!("{}/static/{}", app.config.public_url, f.avatar),
        "privilege": [],
    });
    if let Some(unionid) = f.unionid {
        body["unionid"] = unionid.into();
    }
    wechat_json(body)
}

async fn check_token(
    Extension(sim): Extension<Arc<Simulator>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match token_of(&sim, &q) {
        Ok(_) => wechat_error(0, "ok"),
        Err((code, msg)) => wechat_error(code, msg),
    }
}

#[derive(Template)]
#[template(path = "demo/chat.html")]
struct ChatTemplate {
    layout: Layout,
    followers: Vec<(usize, SampleFollower)>,
    chosen: usize,
    lines: Vec<ChatLine>,
    mode: &'static str,
    /// The pushed menu's CLICK buttons: (name, key).
    clicks: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
struct ChatQuery {
    follower: Option<usize>,
}

/// The follower chat: pick a follower, send a message or an event, read the account's answer.
async fn chat(
    State(app): State<AppState>,
    Extension(sim): Extension<Arc<Simulator>>,
    Query(q): Query<ChatQuery>,
) -> Result<Response, AppError> {
    let lines = sim
        .chat
        .lock()
        .expect("simulator lock")
        .iter()
        .cloned()
        .collect();
    render(&ChatTemplate {
        layout: Layout::new(&app, false),
        followers: FOLLOWERS.iter().copied().enumerate().collect(),
        chosen: q.follower.unwrap_or(0).min(FOLLOWERS.len() - 1),
        lines,
        mode: app.config.message_mode.as_str(),
        clicks: menu_clicks(&sim),
    })
}

#[derive(Debug, Deserialize)]
struct ChatForm {
    follower: usize,
    kind: String,
    #[serde(default)]
    content: String,
}

/// Sends one message through the real webhook, signed and (unless in plaintext mode) encrypted.
async fn send_chat(
    State(app): State<AppState>,
    Extension(sim): Extension<Arc<Simulator>>,
    Form(form): Form<ChatForm>,
) -> Result<Response, AppError> {
    let follower = FOLLOWERS
        .get(form.follower)
        .ok_or_else(|| AppError::bad_request("follower", "no such sample follower"))?;
    let now = unix_now();
    let (msg_type, fields, sent): (&str, Vec<(String, String)>, String) = match form.kind.as_str() {
        "subscribe" | "unsubscribe" => (
            "event",
            vec![
                ("Event".into(), form.kind.clone()),
                ("EventKey".into(), String::new()),
            ],
            format!("[{}]", form.kind),
        ),
        "click" => (
            "event",
            vec![
                ("Event".into(), "CLICK".into()),
                ("EventKey".into(), form.content.clone()),
            ],
            format!("[menu CLICK {}]", form.content),
        ),
        _ => {
            let msg_id: u64 = rand::random_range(10_u64.pow(15)..10_u64.pow(16));
            (
                "text",
                vec![
                    ("Content".into(), form.content.clone()),
                    ("MsgId".into(), msg_id.to_string()),
                ],
                form.content.clone(),
            )
        }
    };
    let push = Push {
        to: "gh_demo00000000".into(),
        from: follower.openid.into(),
        create_time: now,
        msg_type: msg_type.into(),
        fields,
    };
    let crypto = app
        .config
        .aes_key
        .as_ref()
        .map(|(_, key)| MessageCrypto::new(key.clone(), app.config.appid.clone()));
    let mode = app.config.message_mode;
    let nonce: u32 = rand::random();
    let signed = push.sign(
        app.config.token.expose(),
        mode,
        crypto.as_ref(),
        &now.to_string(),
        &nonce.to_string(),
    );
    let webhook = format!("http://{}/wechat", app.local_addr);
    let started = Instant::now();
    let answer = app
        .http
        .post(signed.url(&webhook))
        .header(header::CONTENT_TYPE, "text/xml")
        .body(signed.body.clone())
        .send()
        .await;
    let line = match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            let elapsed = started.elapsed();
            let verdict = check_reply(
                &push,
                app.config.token.expose(),
                crypto.as_ref(),
                status,
                elapsed,
                &body,
            );
            let answer = segments(&match &verdict.reply {
                _ if verdict.silent => "（没有回复 · no reply: success）".to_owned(),
                Some(reply) => describe_reply(reply),
                None => body,
            });
            ChatLine {
                follower: follower.nickname,
                sent,
                answer,
                problems: verdict.problems,
                millis: elapsed.as_millis(),
            }
        }
        Err(e) => ChatLine {
            follower: follower.nickname,
            sent,
            answer: Vec::new(),
            problems: vec![format!(
                "the webhook could not be reached: {}",
                e.without_url()
            )],
            millis: started.elapsed().as_millis(),
        },
    };
    add_line(&sim, line);
    Ok(Redirect::to(&format!("/_sim/chat?follower={}#latest", form.follower)).into_response())
}

fn add_line(sim: &Simulator, line: ChatLine) {
    let mut chat = sim.chat.lock().expect("simulator lock");
    chat.push_back(line);
    while chat.len() > TRANSCRIPT_LEN {
        chat.pop_front();
    }
}

/// A new account token (or ticket) valid for 2 hours.
fn account_token(sim: &Simulator, prefix: &str) -> Response {
    let token = random_token(prefix);
    sim.account_tokens
        .lock()
        .expect("simulator lock")
        .insert(token.clone(), unix_now() + ACCESS_LIFETIME);
    let field = if prefix == "simTicket" {
        "ticket"
    } else {
        "access_token"
    };
    wechat_json(serde_json::json!({ field: token, "expires_in": ACCESS_LIFETIME }))
}

fn account_secret_ok(app: &AppState, appid: Option<&str>, secret: Option<&str>) -> bool {
    appid == Some(app.config.appid.as_str())
        && app
            .config
            .appsecret
            .as_ref()
            .is_some_and(|s| secret == Some(s.expose()))
}

async fn stable_token(
    State(app): State<AppState>,
    Extension(sim): Extension<Arc<Simulator>>,
    body: String,
) -> Response {
    let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if !account_secret_ok(&app, body["appid"].as_str(), body["secret"].as_str()) {
        return wechat_error(40125, "invalid appsecret");
    }
    account_token(&sim, "simST")
}

async fn classic_token(
    State(app): State<AppState>,
    Extension(sim): Extension<Arc<Simulator>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (appid, secret) = (q.get("appid"), q.get("secret"));
    if !account_secret_ok(&app, appid.map(String::as_str), secret.map(String::as_str)) {
        return wechat_error(40125, "invalid appsecret");
    }
    account_token(&sim, "simCT")
}

/// WeChat's answer to a call whose access_token is bad; `None` when it is good.
fn refused_token(sim: &Simulator, q: &HashMap<String, String>) -> Option<Response> {
    let tokens = sim.account_tokens.lock().expect("simulator lock");
    match q.get("access_token").and_then(|t| tokens.get(t)) {
        None => Some(wechat_error(40001, "invalid credential")),
        Some(&expires) if expires <= unix_now() => {
            Some(wechat_error(42001, "access_token expired"))
        }
        Some(_) => None,
    }
}

fn ok() -> Response {
    wechat_error(0, "ok")
}

async fn ticket(
    Extension(sim): Extension<Arc<Simulator>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = refused_token(&sim, &q) {
        return answer;
    }
    account_token(&sim, "simTicket")
}

async fn menu_create(
    Extension(sim): Extension<Arc<Simulator>>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    if let Some(answer) = refused_token(&sim, &q) {
        return answer;
    }
    match serde_json::from_str::<crate::upstream::menu::Menu>(&body) {
        Ok(menu) if menu.problems().is_empty() => {
            *sim.menu.lock().expect("simulator lock") = serde_json::to_value(&menu).ok();
            ok()
        }
        _ => wechat_error(40016, "invalid button size"),
    }
}

async fn menu_current(
    Extension(sim): Extension<Arc<Simulator>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = refused_token(&sim, &q) {
        return answer;
    }
    let Some(mut menu) = sim.menu.lock().expect("simulator lock").clone() else {
        return wechat_json(serde_json::json!({ "is_menu_open": 0 }));
    };
    // get_current_selfmenu_info nests sub-buttons under "list".
    if let Some(buttons) = menu["button"].as_array_mut() {
        for b in buttons {
            if let Some(subs) = b.get("sub_button").cloned() {
                b["sub_button"] = serde_json::json!({ "list": subs });
            }
        }
    }
    wechat_json(serde_json::json!({ "is_menu_open": 1, "selfmenu_info": menu }))
}

async fn menu_delete(
    Extension(sim): Extension<Arc<Simulator>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = refused_token(&sim, &q) {
        return answer;
    }
    *sim.menu.lock().expect("simulator lock") = None;
    ok()
}

/// A customer-service message appears in the chat, as a late answer from the account.
async fn custom_send(
    Extension(sim): Extension<Arc<Simulator>>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    if let Some(answer) = refused_token(&sim, &q) {
        return answer;
    }
    let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let to = body["touser"].as_str().unwrap_or_default();
    let Some(follower) = FOLLOWERS.iter().find(|f| f.openid == to) else {
        return wechat_error(40003, "invalid openid");
    };
    let text = match body["msgtype"].as_str() {
        Some("text") => body["text"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        Some("news") => body["news"]["articles"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| format!("📰 {}", a["title"].as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => format!("[{other}]"),
        None => return wechat_error(40008, "invalid message type"),
    };
    add_line(
        &sim,
        ChatLine {
            follower: follower.nickname,
            sent: String::new(),
            answer: segments(&text),
            problems: Vec::new(),
            millis: 0,
        },
    );
    ok()
}

async fn user_info(
    Extension(sim): Extension<Arc<Simulator>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(answer) = refused_token(&sim, &q) {
        return answer;
    }
    let openid = q.get("openid").cloned().unwrap_or_default();
    let Some(follower) = FOLLOWERS.iter().find(|f| f.openid == openid) else {
        return wechat_error(40003, "invalid openid");
    };
    let mut info = serde_json::json!({
        "subscribe": 1,
        "openid": follower.openid,
        "language": "zh_CN",
        "subscribe_time": unix_now(),
        "remark": "",
        "groupid": 0,
        "tagid_list": [],
        "subscribe_scene": "ADD_SCENE_QR_CODE",
    });
    if let Some(unionid) = follower.unionid {
        info["unionid"] = unionid.into();
    }
    wechat_json(info)
}

/// The CLICK buttons of the menu, for the chat to offer (name, key).
fn menu_clicks(sim: &Simulator) -> Vec<(String, String)> {
    let menu = sim.menu.lock().expect("simulator lock").clone();
    menu.and_then(|m| serde_json::from_value::<crate::upstream::menu::Menu>(m).ok())
        .map(|m| {
            m.click_keys()
                .into_iter()
                .map(|(key, name)| (name.to_owned(), key.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// A passive reply as the follower would see it.
fn describe_reply(reply: &crate::wechat::XmlFields) -> String {
    match reply.get("MsgType") {
        Some("text") => reply.text("Content"),
        Some("news") => {
            let titles: Vec<String> = reply
                .iter()
                .filter(|(k, _)| k.ends_with("/Title"))
                .map(|(_, v)| format!("📰 {v}"))
                .collect();
            titles.join("\n")
        }
        Some(other) => format!("[{other}]"),
        None => "[?]".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_text_replies_become_links_and_the_rest_stays_text() {
        let s = segments("看 <a href=\"https://x.test/\">门户</a> 吧 <b>");
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].href.as_deref(), Some("https://x.test/"));
        assert_eq!((s[0].text.as_str(), s[2].text.as_str()), ("看 ", " 吧 <b>"));
        let s = segments("<a href=\"javascript:alert(1)\">x</a>");
        assert!(s.iter().all(|seg| seg.href.is_none()));
        assert_eq!(
            s.iter().map(|seg| seg.text.as_str()).collect::<String>(),
            "<a href=\"javascript:alert(1)\">x</a>"
        );
    }
}
