//! Web authorization's calls (docs/wechat.md §6.3–6.5): the code exchange, the refresh, the profile, and
//! the token check.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{Query, State};
use axum::response::Response;
use serde_json::json;

use super::{
    CODE_LIFETIME, FakeWeChat, Grant, REFRESH_LIFETIME, TIDY_PAST, TOKEN_LIFETIME, answer, error,
    lock, random_token,
};
use crate::time::unix_now;

type Params = Query<HashMap<String, String>>;

fn param<'q>(q: &'q HashMap<String, String>, name: &str) -> Option<&'q str> {
    q.get(name).map(String::as_str)
}

/// A new token for `grant`, valid for `lifetime` seconds (expired ones are forgotten past a bound).
fn remember(
    tokens: &Mutex<HashMap<String, Grant>>,
    prefix: &str,
    grant: &Grant,
    lifetime: i64,
) -> String {
    let now = unix_now();
    let token = random_token(prefix);
    let mut tokens = lock(tokens);
    if tokens.len() > TIDY_PAST {
        tokens.retain(|_, g| g.expires_at > now);
    }
    let mut g = grant.clone();
    g.expires_at = now + lifetime;
    g.expired = false;
    tokens.insert(token.clone(), g);
    token
}

/// A fresh access token for `grant` (and a fresh refresh token unless one is being used), as the
/// exchange and the refresh answer.
fn grant_answer(wechat: &FakeWeChat, grant: &Grant, refresh: Option<&str>) -> Response {
    let access = remember(&wechat.state.access, "AT", grant, TOKEN_LIFETIME);
    let refresh = refresh.map_or_else(
        || remember(&wechat.state.refresh, "RT", grant, REFRESH_LIFETIME),
        str::to_owned,
    );
    let mut body = json!({
        "access_token": access,
        "expires_in": TOKEN_LIFETIME,
        "refresh_token": refresh,
        "openid": grant.openid,
        "scope": grant.scope,
    });
    if grant.snapshot {
        body["is_snapshotuser"] = 1.into();
    } else if let Some(unionid) = (wechat.state.directory)(&grant.openid).and_then(|f| f.unionid) {
        body["unionid"] = unionid.into();
    }
    answer(&body)
}

/// `GET /sns/oauth2/access_token`: a code, once, within 5 minutes.
pub async fn access_token(State(wechat): State<FakeWeChat>, Query(q): Params) -> Response {
    if let Some(fault) = wechat.begin("/sns/oauth2/access_token").await {
        return fault;
    }
    if param(&q, "appid") != Some(wechat.state.appid.as_str()) {
        return error(40013);
    }
    if !wechat.secret_ok(param(&q, "secret")) {
        return error(40125);
    }
    if param(&q, "grant_type") != Some("authorization_code") {
        return error(40002);
    }
    let Some(code) = param(&q, "code") else {
        return error(41008);
    };
    let grant = {
        let mut codes = lock(&wechat.state.codes);
        match codes.get_mut(code) {
            None => return error(40029),
            Some(c) if c.used => return error(40163),
            Some(c) if unix_now() - c.issued_at > CODE_LIFETIME => return error(42003),
            Some(c) => {
                c.used = true;
                Grant {
                    openid: c.openid.clone(),
                    scope: c.scope.clone(),
                    snapshot: c.snapshot,
                    expires_at: 0,
                    expired: false,
                }
            }
        }
    };
    let delay = *lock(&wechat.state.exchange_delay);
    // Even a zero sleep waits for the timer's next millisecond tick.
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    grant_answer(&wechat, &grant, None)
}

/// `GET /sns/oauth2/refresh_token`: a new access token for 30 days after consent.
pub async fn refresh_token(State(wechat): State<FakeWeChat>, Query(q): Params) -> Response {
    if let Some(fault) = wechat.begin("/sns/oauth2/refresh_token").await {
        return fault;
    }
    let Some(rt) = param(&q, "refresh_token") else {
        return error(40030);
    };
    let grant = lock(&wechat.state.refresh).get(rt).cloned();
    match grant {
        None => error(40030),
        Some(g) if g.expired || g.expires_at <= unix_now() => error(42002),
        Some(g) => grant_answer(&wechat, &g, Some(rt)),
    }
}

/// The grant behind a web-authorization access token for `openid`, or WeChat's error code.
fn grant_of(wechat: &FakeWeChat, q: &HashMap<String, String>) -> Result<Grant, i64> {
    let grant = param(q, "access_token")
        .and_then(|t| lock(&wechat.state.access).get(t).cloned())
        .ok_or(40001)?;
    if grant.expired || grant.expires_at <= unix_now() {
        return Err(42001);
    }
    if param(q, "openid") != Some(grant.openid.as_str()) {
        return Err(40003);
    }
    Ok(grant)
}

/// `GET /sns/userinfo`: the profile, for a `snsapi_userinfo` grant only.
pub async fn userinfo(State(wechat): State<FakeWeChat>, Query(q): Params) -> Response {
    if let Some(fault) = wechat.begin("/sns/userinfo").await {
        return fault;
    }
    let grant = match grant_of(&wechat, &q) {
        Ok(grant) => grant,
        Err(code) => return error(code),
    };
    if grant.scope != "snsapi_userinfo" {
        return error(48001);
    }
    if param(&q, "lang") != Some("zh_CN") {
        return error(40003);
    }
    let Some(follower) = (wechat.state.directory)(&grant.openid) else {
        return error(40003);
    };
    let mut profile = follower.profile;
    profile["openid"] = grant.openid.into();
    answer(&profile)
}

/// `GET /sns/auth`: whether a web-authorization access token is valid.
pub(crate) async fn check_token(State(wechat): State<FakeWeChat>, Query(q): Params) -> Response {
    if let Some(fault) = wechat.begin("/sns/auth").await {
        return fault;
    }
    error(grant_of(&wechat, &q).err().unwrap_or(0))
}
