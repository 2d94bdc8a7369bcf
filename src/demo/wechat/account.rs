//! The account's calls (docs/wechat.md §7): the access_token (stable and classic), the jsapi_ticket, the
//! menu, customer-service messages, follower info and QR codes with a scene.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::{FakeWeChat, LOG_LEN, TOKEN_LIFETIME, answer, error, lock, ok, random_token};
use crate::time::unix_now;

type Params = Query<HashMap<String, String>>;

fn param<'q>(q: &'q HashMap<String, String>, name: &str) -> Option<&'q str> {
    q.get(name).map(String::as_str)
}

/// A new account token or ticket, valid for the configured lifetime.
fn new_token(wechat: &FakeWeChat, prefix: &str) -> (String, i64) {
    let mut account = lock(&wechat.state.account);
    let lifetime = account.lifetime.unwrap_or(TOKEN_LIFETIME);
    let token = random_token(prefix);
    let now = unix_now();
    if account.tokens.len() > super::TIDY_PAST {
        account.tokens.retain(|_, expires| *expires > now);
    }
    account.tokens.insert(token.clone(), now + lifetime);
    (token, lifetime)
}

fn token_answer(token: &str, expires_in: i64) -> Response {
    answer(&json!({ "access_token": token, "expires_in": expires_in }))
}

/// `POST /cgi-bin/stable_token`: the same token to every caller until its last five minutes (then a new
/// one, the old still valid until it expires), unless `force_refresh`.
pub async fn stable_token(State(wechat): State<FakeWeChat>, body: String) -> Response {
    if let Some(fault) = wechat.begin("/cgi-bin/stable_token").await {
        return fault;
    }
    let delay = lock(&wechat.state.account).token_delay;
    tokio::time::sleep(delay).await;
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    if body["appid"].as_str() != Some(wechat.state.appid.as_str()) {
        return error(40013);
    }
    if !wechat.secret_ok(body["secret"].as_str()) {
        return error(40125);
    }
    if body["grant_type"] != "client_credential" {
        return error(40002);
    }
    let force = body["force_refresh"] == true;
    {
        let account = lock(&wechat.state.account);
        let now = unix_now();
        let current = account
            .stable
            .as_ref()
            .filter(|_| !force)
            .and_then(|stable| Some((stable, *account.tokens.get(stable)?)))
            .filter(|(_, expires)| *expires - now > 300);
        if let Some((stable, expires)) = current {
            return token_answer(stable, expires - now);
        }
    }
    let (token, lifetime) = new_token(&wechat, "ST");
    lock(&wechat.state.account).stable = Some(token.clone());
    token_answer(&token, lifetime)
}

/// `GET /cgi-bin/token`: the classic endpoint, where every fetch replaces every earlier token.
pub(crate) async fn classic_token(State(wechat): State<FakeWeChat>, Query(q): Params) -> Response {
    if let Some(fault) = wechat.begin("/cgi-bin/token").await {
        return fault;
    }
    let delay = lock(&wechat.state.account).token_delay;
    tokio::time::sleep(delay).await;
    if param(&q, "appid") != Some(wechat.state.appid.as_str()) {
        return error(40013);
    }
    if !wechat.secret_ok(param(&q, "secret")) {
        return error(40125);
    }
    {
        let mut account = lock(&wechat.state.account);
        account.tokens.clear();
        account.stable = None;
    }
    let (token, lifetime) = new_token(&wechat, "CT");
    token_answer(&token, lifetime)
}

/// Records the call and the token it carried; `Err` is WeChat's answer to a bad token.
pub(super) async fn with_token(
    wechat: &FakeWeChat,
    path: &str,
    q: &HashMap<String, String>,
) -> Result<(), Response> {
    if let Some(fault) = wechat.begin(path).await {
        return Err(fault);
    }
    let token = param(q, "access_token").unwrap_or_default();
    let mut account = lock(&wechat.state.account);
    account.used.push_back((path.to_owned(), token.to_owned()));
    if account.used.len() > LOG_LEN {
        account.used.pop_front();
    }
    match account.tokens.get(token) {
        None => Err(error(40001)),
        Some(&expires) if expires <= unix_now() => Err(error(42001)),
        Some(_) => Ok(()),
    }
}

/// `GET /cgi-bin/ticket/getticket?type=jsapi`.
pub async fn ticket(State(wechat): State<FakeWeChat>, Query(q): Params) -> Response {
    if let Err(answer) = with_token(&wechat, "/cgi-bin/ticket/getticket", &q).await {
        return answer;
    }
    if param(&q, "type") != Some("jsapi") {
        return error(40097);
    }
    let (ticket, lifetime) = new_token(&wechat, "TICKET");
    answer(&json!({ "errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": lifetime }))
}

/// `POST /cgi-bin/menu/create`: a menu that keeps WeChat's rules replaces the current one.
pub(crate) async fn menu_create(
    State(wechat): State<FakeWeChat>,
    Query(q): Params,
    body: String,
) -> Response {
    if let Err(answer) = with_token(&wechat, "/cgi-bin/menu/create", &q).await {
        return answer;
    }
    let Ok(menu) = serde_json::from_str::<Value>(&body) else {
        return error(47001);
    };
    match serde_json::from_value::<crate::upstream::menu::Menu>(menu.clone()) {
        Ok(parsed) if parsed.problems().is_empty() => {
            lock(&wechat.state.account).menu = Some(menu);
            ok()
        }
        _ => error(40016),
    }
}

/// `GET /cgi-bin/get_current_selfmenu_info`: the menu followers see, sub-buttons nested under `list`.
pub(crate) async fn menu_current(State(wechat): State<FakeWeChat>, Query(q): Params) -> Response {
    if let Err(answer) = with_token(&wechat, "/cgi-bin/get_current_selfmenu_info", &q).await {
        return answer;
    }
    let Some(mut menu) = lock(&wechat.state.account).menu.clone() else {
        return answer(&json!({ "is_menu_open": 0 }));
    };
    if let Some(buttons) = menu["button"].as_array_mut() {
        for b in buttons {
            if let Some(subs) = b.get("sub_button").cloned() {
                b["sub_button"] = json!({ "list": subs });
            }
        }
    }
    answer(&json!({ "is_menu_open": 1, "selfmenu_info": { "button": menu["button"] } }))
}

/// `GET /cgi-bin/menu/delete`.
pub(crate) async fn menu_delete(State(wechat): State<FakeWeChat>, Query(q): Params) -> Response {
    if let Err(answer) = with_token(&wechat, "/cgi-bin/menu/delete", &q).await {
        return answer;
    }
    lock(&wechat.state.account).menu = None;
    ok()
}

/// `POST /cgi-bin/message/custom/send`. Logged as soon as it arrives with a valid token (before a
/// scripted delay or error, as a message WeChat received before failing would be); a scripted error
/// means WeChat refused it, and the log forgets it.
pub(crate) async fn custom_send(
    State(wechat): State<FakeWeChat>,
    Query(q): Params,
    body: String,
) -> Response {
    const PATH: &str = "/cgi-bin/message/custom/send";
    let Ok(message) = serde_json::from_str::<Value>(&body) else {
        return error(47001);
    };
    let to = message["touser"].as_str().unwrap_or_default();
    let known = (wechat.state.directory)(to).is_some();
    let token = param(&q, "access_token").unwrap_or_default();
    let logged = {
        let mut account = lock(&wechat.state.account);
        let valid = account.tokens.get(token).is_some_and(|&e| e > unix_now());
        let logged = valid && known && message["msgtype"].is_string();
        if logged {
            account.sent.push_back(message.clone());
            if account.sent.len() > LOG_LEN {
                account.sent.pop_front();
            }
        }
        logged
    };
    if let Err(answer) = with_token(&wechat, PATH, &q).await {
        if logged {
            let mut account = lock(&wechat.state.account);
            if let Some(i) = account.sent.iter().rposition(|m| *m == message) {
                account.sent.remove(i);
            }
        }
        return answer;
    }
    if !known {
        return error(40003);
    }
    if !message["msgtype"].is_string() {
        return error(40008);
    }
    let delivery = lock(&wechat.state.delivery).clone();
    if let Some(deliver) = delivery {
        deliver(to, &message, None);
    }
    ok()
}

/// `POST /cgi-bin/qrcode/create` with a string scene: a ticket and the URL to draw. Temporary codes live
/// 60 s to 30 days (default 60 s, as WeChat's); permanent ones count against the account's 100,000.
pub(crate) async fn qr_create(
    State(wechat): State<FakeWeChat>,
    Query(q): Params,
    body: String,
) -> Response {
    if let Err(answer) = with_token(&wechat, "/cgi-bin/qrcode/create", &q).await {
        return answer;
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return error(47001);
    };
    let scene = request["action_info"]["scene"]["scene_str"]
        .as_str()
        .unwrap_or_default();
    if scene.is_empty() || scene.len() > 64 {
        return error(40097);
    }
    let expire_seconds = match request["action_name"].as_str() {
        Some("QR_STR_SCENE") => Some(
            request["expire_seconds"]
                .as_i64()
                .unwrap_or(60)
                .clamp(60, crate::qr::MAX_TEMPORARY_SECS),
        ),
        Some("QR_LIMIT_STR_SCENE") => None,
        _ => return error(40097),
    };
    let ticket = random_token("gQ");
    let url = format!("http://weixin.qq.com/q/{}", &random_token("")[..22]);
    let mut account = lock(&wechat.state.account);
    account.codes.push_back((scene.to_owned(), request.clone()));
    if account.codes.len() > LOG_LEN {
        account.codes.pop_front();
    }
    let mut created = json!({ "ticket": ticket, "url": url });
    if let Some(secs) = expire_seconds {
        created["expire_seconds"] = secs.into();
    }
    answer(&created)
}

/// `GET /cgi-bin/user/info`: what the account knows of a follower.
pub(crate) async fn user_info(State(wechat): State<FakeWeChat>, Query(q): Params) -> Response {
    if let Err(answer) = with_token(&wechat, "/cgi-bin/user/info", &q).await {
        return answer;
    }
    let openid = param(&q, "openid").unwrap_or_default();
    let Some(follower) = (wechat.state.directory)(openid) else {
        return error(40003);
    };
    let mut info = follower.info;
    info["openid"] = openid.into();
    answer(&info)
}
