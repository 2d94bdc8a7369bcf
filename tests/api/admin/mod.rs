//! The admin area over loopback: the guard on every route, sign-in and its limits, CSRF, the follower
//! and message lists, CSV export, and reply rules that change the very next webhook answer.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::db::quote;
use wxportal::time::unix_now;
use wxportal::wechat::MessageMode;
use wxportal::wechat::push::{self, Push};

use crate::helpers::*;

mod cli;
mod demo;
mod followers;
mod messages;
mod rules;
mod sign_in;

pub(crate) const PASSWORD: &str = "correct horse battery";

/// A server with one admin, `ops`.
pub(crate) async fn with_admin(vars: &[(&str, &str)]) -> TestApp {
    let app = TestApp::spawn(vars).await;
    let hash = wxportal::passwords::hash(PASSWORD).unwrap();
    assert!(app.store.create_admin("ops", &hash).await.unwrap());
    app
}

pub(super) async fn sign_in_as(app: &TestApp, name: &str, password: &str) -> (Browser, Page) {
    let browser = Browser::new(app);
    let page = sign_in_with(&browser, name, password).await;
    (browser, page)
}

pub(crate) async fn sign_in_with(browser: &Browser, name: &str, password: &str) -> Page {
    let csrf = browser.get("/admin/login").await.csrf();
    browser
        .post_form(
            "/admin/login",
            &[
                ("csrf", &csrf),
                ("name", name),
                ("password", password),
                ("next", "/admin/users"),
            ],
        )
        .await
}

/// A signed-in admin's browser and the CSRF token of its pages.
pub(crate) async fn signed_in(app: &TestApp) -> (Browser, String) {
    let (browser, page) = sign_in_as(app, "ops", PASSWORD).await;
    assert_eq!(page.status, 303, "{page:?}");
    let csrf = browser.get("/admin").await.csrf();
    (browser, csrf)
}

/// The reply the webhook sends to `push` (plaintext mode), as XML fields; `None` for `success`.
pub(crate) async fn reply_to(app: &TestApp, push: &Push) -> Option<wxportal::wechat::XmlFields> {
    let started = Instant::now();
    let (status, body) = app.post(push, MessageMode::Plain, None).await;
    let verdict = push::check_reply(push, TOKEN, None, status, started.elapsed(), &body);
    assert!(verdict.accepted(), "{:?} / {body}", verdict.problems);
    verdict.reply
}

pub(crate) fn click(from: &str, key: &str) -> Push {
    let mut push = event(from, "CLICK", unix_now());
    push.fields = vec![
        ("Event".into(), "CLICK".into()),
        ("EventKey".into(), key.into()),
    ];
    push
}

/// The OpenID of seeded follower `i`: 28 characters, as WeChat's are.
pub(crate) fn openid(i: usize) -> String {
    format!("oSeed{i:023}")
}

pub(super) fn unionid(i: usize) -> String {
    format!("uSeed{i:023}")
}

/// Inserts `n` followers straight into the database: [`openid`]`(i)`, nickname from `nickname(i)`.
pub(crate) async fn seed_users(app: &TestApp, n: usize, nickname: impl Fn(usize) -> String) {
    let mut db = app.raw_db().await;
    let rows: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "({}, {}, {}, {}, {}, {}, {}, '深圳')",
                quote(&openid(i)),
                quote(&unionid(i)),
                quote(&nickname(i)),
                if i % 3 != 0 { "TRUE" } else { "FALSE" },
                1_700_000_000 + i as i64,
                1_700_000_000 + (i as i64 * 7919) % 100_000,
                if i % 2 == 0 {
                    "'snsapi_userinfo'"
                } else {
                    "NULL"
                },
            )
        })
        .collect();
    for chunk in rows.chunks(500) {
        db.execute(&format!(
            "INSERT INTO users (openid, unionid, nickname, subscribed, first_seen_at, last_seen_at, scope, city)
             VALUES {}",
            chunk.join(", ")
        ))
        .await;
    }
}

pub(crate) fn browser_client() -> reqwest::Client {
    wxportal::upstream::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The text of an HTML page with character references decoded: what a reader sees.
pub(crate) fn unescape(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.find(';').filter(|&e| e <= 8).unwrap_or(0);
        let decoded = match &rest[..=end] {
            "&lt;" => Some('<'),
            "&gt;" => Some('>'),
            "&amp;" => Some('&'),
            "&quot;" => Some('"'),
            r if r.starts_with("&#x") => u32::from_str_radix(&r[3..end], 16)
                .ok()
                .and_then(char::from_u32),
            r if r.starts_with("&#") => r[2..end].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) if end > 0 => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

pub(super) fn fill(path: &str) -> String {
    path.replace("{openid}", "oVictim").replace("{id}", "1")
}
