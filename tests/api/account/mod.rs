//! Talking back to WeChat, against a mock upstream that counts calls: the shared access_token (one fetch
//! for many needs, across processes, renewed ahead, recovered after 40001), `-1` backoff, the menu, the
//! outbox (slow rules, permanent errors, kill -9), follower info on subscribe, and the JS-SDK config.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use wxportal::time::unix_now;

use crate::admin::{reply_to, signed_in, unescape, with_admin};
use crate::helpers::*;
use crate::mock::{APPSECRET, MockWeChat, Scripted};

mod answers;
mod bot;
mod images;
mod menu;
mod outbox;
mod qr;
mod sync;
mod templates;
mod token;

pub(super) const STABLE: &str = "/cgi-bin/stable_token";
pub(super) const TICKET: &str = "/cgi-bin/ticket/getticket";
pub(super) const MENU_CREATE: &str = "/cgi-bin/menu/create";
pub(super) const CUSTOM_SEND: &str = "/cgi-bin/message/custom/send";

/// A server with an admin, talking to a fresh mock.
pub(super) async fn account() -> (TestApp, MockWeChat) {
    account_with(&[]).await
}

/// [`account`] with more settings.
pub(super) async fn account_with(vars: &[(&str, &str)]) -> (TestApp, MockWeChat) {
    let mock = MockWeChat::start().await;
    let mut all = vec![
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
    ];
    all.extend_from_slice(vars);
    let app = with_admin(&all).await;
    (app, mock)
}

pub(super) async fn jssdk_config(client: &reqwest::Client, base: &str, url: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}/jssdk/config"))
        .query(&[("url", url)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// SHA-1 as the JS-SDK documentation spells it out, written here independently of the server's code.
pub(super) fn expected_signature(ticket: &str, config: &Value, url: &str) -> String {
    let plain = format!(
        "jsapi_ticket={ticket}&noncestr={}&timestamp={}&url={url}",
        config["nonceStr"].as_str().unwrap(),
        config["timestamp"].as_i64().unwrap()
    );
    hex::encode(Sha1::digest(plain.as_bytes()))
}

pub(super) async fn stored_ticket(app: &TestApp) -> String {
    app.raw_db()
        .await
        .text("SELECT value FROM credentials WHERE kind = 'jsapi_ticket'")
        .await
}

/// Runs `wxportal COMMAND ARGS` on `database` against the mock at `api`, in `dir`: success, stdout, and
/// stdout with stderr (the logs).
pub(super) fn wxportal_command(
    command: &str,
    args: &[&str],
    database: &str,
    api: &str,
    dir: &std::path::Path,
) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wxportal"))
        .arg(command)
        .args(args)
        .env_clear()
        .env("WXPORTAL_TOKEN", TOKEN)
        .env("WXPORTAL_APPID", APPID)
        .env("WXPORTAL_APPSECRET", APPSECRET)
        .env("WXPORTAL_WECHAT_API_URL", api)
        .env("WXPORTAL_DATABASE_URL", database)
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), stdout, all)
}

/// Adds a keyword rule through the admin form.
pub(crate) async fn add_rule(
    browser: &Browser,
    csrf: &str,
    keyword: &str,
    content: &str,
    slow: bool,
) {
    let mut form = vec![
        ("csrf", csrf),
        ("match_mode", "exact"),
        ("keyword", keyword),
        ("reply_type", "text"),
        ("content", content),
        ("enabled", "on"),
    ];
    if slow {
        form.push(("slow", "on"));
    }
    let page = browser.post_form("/admin/replies/new", &form).await;
    assert_eq!(page.status, 303, "{}", page.body);
}
