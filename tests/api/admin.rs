//! The admin area over loopback: the guard on every route, sign-in and its limits, CSRF, the follower
//! and message lists, CSV export, and reply rules that change the very next webhook answer.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, SqliteConnection};
use wxportal::time::unix_now;
use wxportal::wechat::MessageMode;
use wxportal::wechat::push::{self, Push};

use crate::helpers::*;

const PASSWORD: &str = "correct horse battery";

/// A server with one admin, `ops`.
pub(crate) async fn with_admin(vars: &[(&str, &str)]) -> TestApp {
    let app = TestApp::spawn(vars).await;
    let hash = wxportal::passwords::hash(PASSWORD).unwrap();
    assert!(app.store.create_admin("ops", &hash).await.unwrap());
    app
}

async fn sign_in_as(app: &TestApp, name: &str, password: &str) -> (Browser, Page) {
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
fn openid(i: usize) -> String {
    format!("oSeed{i:023}")
}

fn unionid(i: usize) -> String {
    format!("uSeed{i:023}")
}

/// Inserts `n` followers straight into the database: [`openid`]`(i)`, nickname from `nickname(i)`.
async fn seed_users(app: &TestApp, n: usize, nickname: impl Fn(usize) -> String) {
    let mut conn = SqliteConnection::connect(&app.database_url())
        .await
        .unwrap();
    let mut tx = conn.begin().await.unwrap();
    for i in 0..n {
        sqlx::query(
            "INSERT INTO users (openid, unionid, nickname, subscribed, first_seen_at, last_seen_at, scope, city)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(openid(i))
        .bind(unionid(i))
        .bind(nickname(i))
        .bind(i % 3 != 0)
        .bind(1_700_000_000 + i as i64)
        .bind(1_700_000_000 + (i as i64 * 7919) % 100_000)
        .bind(if i % 2 == 0 { Some("snsapi_userinfo") } else { None })
        .bind("深圳")
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
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

fn fill(path: &str) -> String {
    path.replace("{openid}", "oVictim").replace("{id}", "1")
}

#[tokio::test]
async fn every_admin_route_sends_anonymous_visitors_and_followers_to_sign_in() {
    let (app, mock) = crate::portal::portal().await;
    // Something each route could harm: a follower with a message, and the welcome rule (id 1).
    reply_to(&app, &text("oVictim", "hello", "9001")).await;
    let routes = wxportal::web::admin::guarded_routes();
    assert!(routes.len() >= 15, "{routes:?}");
    let anonymous = Browser::new(&app);
    let (follower, _) = crate::portal::signed_in(&app, &mock, "oFollower").await;
    for browser in [&anonymous, &follower] {
        let csrf = browser.get("/admin/login").await.csrf();
        for (method, path) in &routes {
            let path = fill(path);
            let page = if method == "GET" {
                browser.get(&path).await
            } else {
                let form = [
                    ("csrf", csrf.as_str()),
                    ("confirm", "yes"),
                    ("direction", "down"),
                    ("reply_type", "text"),
                    ("content", "pwned"),
                    ("match_mode", "exact"),
                    ("keyword", "x"),
                ];
                browser.post_form(&path, &form).await
            };
            assert_eq!(page.status, 303, "{method} {path}: {page:?}");
            let location = page.location.unwrap();
            assert!(
                location.starts_with("/admin/login?next="),
                "{method} {path}: {location}"
            );
        }
    }
    // Nothing was changed by any of it.
    assert!(app.store.user("oVictim").await.unwrap().is_some());
    let rules = app.store.reply_rules().await.unwrap();
    assert_eq!(rules.len(), 2);
    assert!(rules.iter().all(|r| !r.reply.contains("pwned")));
    // A GET comes back to where it was going after sign-in.
    let page = anonymous.get("/admin/messages?kind=text").await;
    assert_eq!(
        page.location.as_deref(),
        Some("/admin/login?next=%2Fadmin%2Fmessages%3Fkind%3Dtext")
    );
}

#[tokio::test]
async fn sign_in_cycles_the_session_and_sign_out_ends_it() {
    let app = with_admin(&[]).await;
    let browser = Browser::new(&app);
    let login = browser.get("/admin/login?next=%2Fadmin%2Freplies").await;
    assert_eq!(login.status, 200);
    assert!(
        login
            .body
            .contains("name=\"next\" value=\"/admin/replies\"")
    );
    let before = browser.cookie().unwrap();
    let page = browser
        .post_form(
            "/admin/login",
            &[
                ("csrf", &login.csrf()),
                ("name", "OPS"),
                ("password", PASSWORD),
                ("next", "/admin/replies"),
            ],
        )
        .await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/admin/replies"))
    );
    assert_ne!(
        browser.cookie().unwrap(),
        before,
        "a new session id at sign-in"
    );
    let dashboard = browser.get("/admin").await;
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.body.contains("退出 ops"));
    // The CSRF token of the anonymous page is not the signed-in one.
    assert_ne!(dashboard.csrf(), login.csrf());

    // An off-site `next` is ignored.
    let (other, page) = sign_in_as(&app, "ops", PASSWORD).await;
    assert_eq!(page.location.as_deref(), Some("/admin/users"));
    let csrf = other.get("/admin").await.csrf();
    let page = other.post_form("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/admin/login"))
    );
    assert_eq!(other.get("/admin").await.status, 303);
    // The first browser is still signed in: sign-out ends one session.
    assert_eq!(browser.get("/admin").await.status, 200);

    // A password change ends every session.
    let hash = wxportal::passwords::hash("another long password").unwrap();
    assert!(app.store.set_admin_password("ops", &hash).await.unwrap());
    assert_eq!(browser.get("/admin").await.status, 303);
}

#[tokio::test]
async fn open_redirects_are_refused_at_sign_in() {
    let app = with_admin(&[]).await;
    for next in [
        "//evil.example/admin",
        "https://evil.example/",
        "/\\evil.example",
        "/me",
    ] {
        let browser = Browser::new(&app);
        let csrf = browser.get("/admin/login").await.csrf();
        let page = browser
            .post_form(
                "/admin/login",
                &[
                    ("csrf", &csrf),
                    ("name", "ops"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(page.location.as_deref(), Some("/admin"), "{next}");
    }
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let app = with_admin(&[]).await;
    let (browser, csrf) = signed_in(&app).await;
    let rule = [
        ("match_mode", "exact"),
        ("keyword", "hi"),
        ("reply_type", "text"),
        ("content", "hello"),
        ("enabled", "on"),
    ];
    for token in [None, Some("0".repeat(32)), Some(String::new())] {
        let mut form = rule.to_vec();
        if let Some(token) = &token {
            form.push(("csrf", token));
        }
        let page = browser.post_form("/admin/replies/new", &form).await;
        assert_eq!(page.status, 403, "{token:?}: {page:?}");
        assert!(page.body.contains("页面已过期"), "{}", page.body);
    }
    assert_eq!(app.store.reply_rules().await.unwrap().len(), 2);
    let page = browser.post_form("/admin/logout", &[]).await;
    assert_eq!(page.status, 403);
    assert_eq!(browser.get("/admin").await.status, 200, "still signed in");

    // The sign-in form too (login CSRF).
    let page = Browser::new(&app)
        .post_form("/admin/login", &[("name", "ops"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, 403);

    // With the token, the same form works.
    let mut form = rule.to_vec();
    form.push(("csrf", &csrf));
    assert_eq!(
        browser.post_form("/admin/replies/new", &form).await.status,
        303
    );
    assert_eq!(app.store.reply_rules().await.unwrap().len(), 3);
}

#[tokio::test]
async fn failed_sign_ins_are_slowed_then_limited_per_account() {
    let app = with_admin(&[]).await;
    let started = Instant::now();
    for _ in 0..5 {
        let (browser, page) = sign_in_as(&app, "ops", "wrong password!").await;
        assert_eq!(page.status, 401, "{page:?}");
        assert!(page.body.contains("用户名或密码不正确"));
        assert_eq!(browser.get("/admin").await.status, 303);
    }
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "each failure waits a second"
    );
    // Now even the right password is refused, without being checked.
    let (browser, page) = sign_in_as(&app, "ops", PASSWORD).await;
    assert_eq!(page.status, 429, "{page:?}");
    assert!(page.body.contains("登录失败次数过多"));
    assert_eq!(browser.get("/admin").await.status, 303);
    // An unknown account fails the same way as a wrong password.
    let (_, page) = sign_in_as(&app, "nobody", PASSWORD).await;
    assert_eq!(page.status, 401);
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_client_address() {
    // The request rate limit is off here: this is about the count of failures.
    let app = with_admin(&[
        ("WXPORTAL_CLIENT_IP_HEADER", "X-Real-IP"),
        ("WXPORTAL_LIMIT_ADMIN_LOGIN", "off"),
    ])
    .await;
    let hash = wxportal::passwords::hash(PASSWORD).unwrap();
    assert!(app.store.create_admin("second", &hash).await.unwrap());
    let attempt = |name: &'static str, address: &'static str, password: &'static str| {
        let app_base = app.base.clone();
        async move {
            let client = browser_client();
            let login = client
                .get(format!("{app_base}/admin/login"))
                .send()
                .await
                .unwrap();
            let cookie = login.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            let page = Page {
                status: 200,
                location: None,
                body: login.text().await.unwrap(),
            };
            client
                .post(format!("{app_base}/admin/login"))
                .header("cookie", cookie)
                .header("x-real-ip", address)
                .form(&[
                    ("csrf", page.csrf().as_str()),
                    ("name", name),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // 20 failures from one address, spread over accounts that do not exist (no account reaches 5).
    const NAMES: [&str; 5] = ["a1", "a2", "a3", "a4", "a5"];
    // Two at a time: no more password checks than cores run at once.
    for pair in (0..20).collect::<Vec<_>>().chunks(2) {
        let failures = pair
            .iter()
            .map(|i| attempt(NAMES[i % 5], "203.0.113.7", "wrong password!"));
        for status in futures_util::future::join_all(failures).await {
            assert_eq!(status, 401);
        }
    }
    assert_eq!(attempt("second", "203.0.113.7", PASSWORD).await, 429);
    assert_eq!(attempt("second", "198.51.100.1", PASSWORD).await, 303);
}

#[tokio::test]
async fn markup_in_nicknames_and_messages_renders_as_text() {
    let app = with_admin(&[]).await;
    let evil = "<script>alert(1)</script>";
    reply_to(&app, &text("oEvil", evil, "7001")).await;
    let tokens = wxportal::store::Tokens {
        scope: "snsapi_userinfo".into(),
        access_token: "ACCESS_TOKEN_SECRET_1".into(),
        access_token_expires_at: unix_now() + 7200,
        refresh_token: "REFRESH_TOKEN_SECRET_1".into(),
        refresh_token_expires_at: unix_now() + 86400,
    };
    let profile = wxportal::store::Profile {
        unionid: Some("uEvil".into()),
        nickname: evil.into(),
        sex: 1,
        province: "广东".into(),
        city: "\"><img src=x onerror=alert(1)>".into(),
        country: "中国".into(),
        headimgurl: "javascript:alert(1)".into(),
        privilege: "[]".into(),
        raw: format!(r#"{{"openid":"oEvil","nickname":"{evil}"}}"#),
    };
    app.store
        .save_refresh("oEvil", &tokens, Some(&profile))
        .await
        .unwrap();
    let (browser, _) = signed_in(&app).await;
    for path in [
        "/admin/users",
        "/admin/users/oEvil",
        "/admin/messages",
        "/admin/messages/1",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains("<script>alert"),
            "{path} has raw markup"
        );
        assert!(!page.body.contains("<img src=x"), "{path} has raw markup");
        assert!(
            !page.body.contains("=\"javascript:"),
            "{path} links javascript:"
        );
        assert!(unescape(&page.body).contains(evil), "{path} shows the text");
    }
    // Tokens are credentials: the detail page shows that they exist, never what they are.
    let detail = browser.get("/admin/users/oEvil").await.body;
    assert!(
        !detail.contains("ACCESS_TOKEN_SECRET_1") && !detail.contains("REFRESH_TOKEN_SECRET_1")
    );
    assert!(detail.contains("uEvil") && detail.contains("广东"));
}

/// Posts the rule form; returns the page.
async fn save_rule(browser: &Browser, csrf: &str, path: &str, fields: &[(&str, &str)]) -> Page {
    let mut form = vec![("csrf", csrf), ("enabled", "on")];
    form.extend_from_slice(fields);
    browser.post_form(path, &form).await
}

#[tokio::test]
async fn a_rule_edit_changes_the_very_next_webhook_reply() {
    let app = with_admin(&[]).await;
    let (browser, csrf) = signed_in(&app).await;
    let content =
        |r: Option<wxportal::wechat::XmlFields>| r.map(|r| r.text("Content")).unwrap_or_default();

    // Built in: the default reply links the guide page.
    let before = content(reply_to(&app, &text("oA", "价格", "1")).await);
    assert!(before.contains(&format!("{PUBLIC_URL}/")), "{before}");

    let page = save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "exact"),
            ("keyword", "价格"),
            ("reply_type", "text"),
            ("content", "99 元"),
        ],
    )
    .await;
    assert_eq!(page.status, 303, "{page:?}");
    assert_eq!(
        content(reply_to(&app, &text("oA", " 价格 ", "2")).await),
        "99 元"
    );
    // Exact means the whole message: anything else gets the default reply.
    assert_eq!(
        content(reply_to(&app, &text("oA", "价格多少", "3")).await),
        before
    );

    let id = app.store.reply_rules().await.unwrap().last().unwrap().id;
    let page = save_rule(
        &browser,
        &csrf,
        &format!("/admin/replies/{id}"),
        &[
            ("match_mode", "contains"),
            ("keyword", "价格"),
            ("reply_type", "text"),
            ("content", "现价 88 元"),
            ("click_key", "PRICE"),
        ],
    )
    .await;
    assert_eq!(page.status, 303, "{page:?}");
    assert_eq!(
        content(reply_to(&app, &text("oA", "价格多少", "4")).await),
        "现价 88 元"
    );
    // The same rule answers its menu key.
    assert_eq!(
        content(reply_to(&app, &click("oA", "PRICE")).await),
        "现价 88 元"
    );
    assert!(reply_to(&app, &click("oOther", "OTHER")).await.is_none());

    // Welcome: edited, then switched off.
    let welcome = app
        .store
        .reply_rules()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kind == wxportal::store::RuleKind::Welcome)
        .unwrap()
        .id;
    save_rule(
        &browser,
        &csrf,
        &format!("/admin/replies/{welcome}"),
        &[
            ("reply_type", "text"),
            ("content", "新的欢迎语 {guide_url}"),
        ],
    )
    .await;
    let hello = content(reply_to(&app, &event("oB", "subscribe", unix_now())).await);
    assert_eq!(hello, format!("新的欢迎语 {PUBLIC_URL}/"));
    let page = browser
        .post_form(
            &format!("/admin/replies/{welcome}"),
            &[("csrf", &csrf), ("reply_type", "text"), ("content", "off")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert!(
        reply_to(&app, &event("oC", "subscribe", unix_now()))
            .await
            .is_none()
    );

    // Order: a second rule that also matches wins only once moved above the first.
    save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "contains"),
            ("keyword", "价"),
            ("reply_type", "text"),
            ("content", "second"),
        ],
    )
    .await;
    assert_eq!(
        content(reply_to(&app, &text("oA", "价格", "5")).await),
        "现价 88 元"
    );
    let second = app.store.reply_rules().await.unwrap().last().unwrap().id;
    let page = browser
        .post_form(
            &format!("/admin/replies/{second}/move"),
            &[("csrf", &csrf), ("direction", "up")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        content(reply_to(&app, &text("oA", "价格", "6")).await),
        "second"
    );
    // Deleted: the first rule answers again.
    let page = browser
        .post_form(
            &format!("/admin/replies/{second}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        content(reply_to(&app, &text("oA", "价格", "7")).await),
        "现价 88 元"
    );
}

#[tokio::test]
async fn an_edit_on_one_instance_reaches_another_sharing_the_database() {
    let first = with_admin(&[]).await;
    let second = TestApp::spawn_in(first.dir.clone(), &[]).await;
    let (browser, csrf) = signed_in(&first).await;
    save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "exact"),
            ("keyword", "hours"),
            ("reply_type", "text"),
            ("content", "9 to 5"),
        ],
    )
    .await;
    let deadline = Instant::now() + wxportal::replies::WATCH_INTERVAL * 3;
    let mut i = 0;
    loop {
        i += 1;
        let reply = reply_to(&second, &text("oA", "hours", &format!("8{i}"))).await;
        if reply.map(|r| r.text("Content")).as_deref() == Some("9 to 5") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other instance never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn keyword_replies_with_cdata_ends_and_markup_stay_valid_xml() {
    let app = with_admin(&[]).await;
    let (browser, csrf) = signed_in(&app).await;
    let tricky = "a ]]> b <b>bold</b> & <![CDATA[x]]> 😀\n第二行";
    save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "exact"),
            ("keyword", "xml"),
            ("reply_type", "text"),
            ("content", tricky),
        ],
    )
    .await;
    save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "exact"),
            ("keyword", "news"),
            ("reply_type", "news"),
            ("title", "T ]]> <b>"),
            ("description", "D & ]]>"),
            ("pic_url", "https://example.com/p.png"),
            ("url", "https://example.com/?a=1&b=]]>"),
        ],
    )
    .await;
    save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "exact"),
            ("keyword", "pic"),
            ("reply_type", "image"),
            ("media_id", "MEDIA_ID_1"),
        ],
    )
    .await;
    let reply = reply_to(&app, &text("oX", "xml", "1")).await.unwrap();
    assert_eq!(reply.text("MsgType"), "text");
    assert_eq!(reply.text("Content"), tricky);
    let news = reply_to(&app, &text("oX", "news", "2")).await.unwrap();
    assert_eq!(news.text("MsgType"), "news");
    assert_eq!(news.text("ArticleCount"), "1");
    assert_eq!(news.text("Articles/item/Title"), "T ]]> <b>");
    assert_eq!(news.text("Articles/item/Description"), "D & ]]>");
    assert_eq!(
        news.text("Articles/item/Url"),
        "https://example.com/?a=1&b=]]>"
    );
    let image = reply_to(&app, &text("oX", "pic", "3")).await.unwrap();
    assert_eq!(
        (
            image.text("MsgType").as_str(),
            image.text("Image/MediaId").as_str()
        ),
        ("image", "MEDIA_ID_1")
    );
}

#[tokio::test]
async fn a_bad_rule_is_refused_with_every_problem_named_and_nothing_stored() {
    let app = with_admin(&[]).await;
    let (browser, csrf) = signed_in(&app).await;
    let page = save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "regex"),
            ("keyword", ""),
            ("reply_type", "news"),
            ("title", ""),
            ("url", "javascript:alert(1)"),
        ],
    )
    .await;
    assert_eq!(page.status, 422);
    for problem in ["匹配方式", "关键词或菜单 KEY", "图文标题必填", "链接须以"]
    {
        assert!(page.body.contains(problem), "{problem} in {}", page.body);
    }
    // Two rules may not share a menu key.
    for keyword in ["one", "two"] {
        save_rule(
            &browser,
            &csrf,
            "/admin/replies/new",
            &[
                ("match_mode", "exact"),
                ("keyword", keyword),
                ("reply_type", "text"),
                ("content", "x"),
                ("click_key", "K1"),
            ],
        )
        .await;
    }
    assert_eq!(app.store.reply_rules().await.unwrap().len(), 3);
    assert_eq!(browser.get("/admin/replies/999").await.status, 404);
    assert_eq!(
        browser
            .post_form("/admin/replies/1/delete", &[("csrf", &csrf)])
            .await
            .status,
        404,
        "welcome is switched off, not deleted"
    );
}

#[tokio::test]
async fn the_follower_list_searches_filters_sorts_and_pages() {
    let app = with_admin(&[]).await;
    seed_users(&app, 130, |i| {
        if i == 77 {
            "张三丰 100%_".into()
        } else {
            format!("粉丝{i}")
        }
    })
    .await;
    let (browser, _) = signed_in(&app).await;

    let openids = |body: &str| -> Vec<String> {
        body.match_indices("href=\"/admin/users/o")
            .map(|(at, _)| body[at + 19..at + 19 + 28].to_owned())
            .collect()
    };
    // Every page, following the next links: each follower once, most recently seen first.
    let mut seen = Vec::new();
    let mut path = "/admin/users".to_owned();
    loop {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 200);
        // The count is on the first page only.
        assert_eq!(
            page.body.contains("<span id=\"matching\">130</span>"),
            seen.is_empty(),
            "{path}"
        );
        seen.extend(openids(&page.body));
        let Some(at) = page.body.find("id=\"next-page\"") else {
            break;
        };
        let href = page.body[..at].rfind("href=\"").unwrap() + 6;
        path = page.body[href..]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
    }
    assert_eq!(seen.len(), 130);
    let mut expected: Vec<(i64, String)> = (0..130)
        .map(|i| (1_700_000_000 + (i * 7919) % 100_000, openid(i as usize)))
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, expected.into_iter().map(|e| e.1).collect::<Vec<_>>());

    // Search: part of a nickname (wildcards literal), a whole OpenID, a whole UnionID.
    for (q, want) in [
        ("100%_", openid(77)),
        (&openid(42), openid(42)),
        (&unionid(5), openid(5)),
    ] {
        let page = browser
            .get(&format!("/admin/users?q={}", urlencoding::encode(q)))
            .await;
        assert_eq!(openids(&page.body), vec![want.to_owned()], "{q}");
    }
    // `_` is not a wildcard: 粉_ would match every 粉丝N.
    let page = browser.get("/admin/users?q=%E7%B2%89_").await;
    assert!(openids(&page.body).is_empty(), "_ is not a wildcard");

    // Filters, and the count of matches.
    let page = browser
        .get("/admin/users?subscribed=no&authorized=userinfo&sort=first_seen_asc")
        .await;
    let rows = openids(&page.body);
    let want: Vec<String> = (0..130)
        .filter(|i| i % 3 == 0 && i % 2 == 0)
        .map(openid)
        .collect();
    assert_eq!(rows, want);
    assert!(
        page.body
            .contains(&format!("<span id=\"matching\">{}</span>", want.len()))
    );
}

#[tokio::test]
async fn csv_export_of_ten_thousand_followers_parses_back() {
    let app = with_admin(&[]).await;
    let nickname = |i: usize| match i % 5 {
        0 => format!("李雷{i} 😀"),
        1 => format!("say \"hi\", {i}"),
        2 => format!("two\nlines {i}"),
        3 => format!("=1+{i}"),
        _ => format!("plain{i}"),
    };
    seed_users(&app, 10_000, nickname).await;
    let (browser, _) = signed_in(&app).await;
    let client = wxportal::upstream::client_builder().build().unwrap();
    let response = client
        .get(app.url("/admin/users.csv"))
        .header("cookie", browser.cookie().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"followers-")
    );
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "a byte-order mark for Excel");
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    assert_eq!(reader.headers().unwrap().get(0), Some("openid"));
    let mut rows = 0;
    let mut openids = std::collections::HashSet::new();
    for record in reader.records() {
        let record = record.unwrap();
        let i: usize = record[0][5..].parse().unwrap();
        let want = nickname(i);
        let want = if want.starts_with('=') {
            format!("'{want}")
        } else {
            want
        };
        assert_eq!(&record[2], want, "row {i}");
        assert_eq!(&record[1], unionid(i));
        assert_eq!(&record[7], if i.is_multiple_of(3) { "0" } else { "1" });
        assert_eq!(&record[6], "深圳");
        openids.insert(record[0].to_owned());
        rows += 1;
    }
    assert_eq!((rows, openids.len()), (10_000, 10_000));

    // The export follows the list's filter.
    let filtered = client
        .get(app.url("/admin/users.csv?subscribed=no"))
        .header("cookie", browser.cookie().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let count = csv::Reader::from_reader(&filtered[3..]).records().count();
    assert_eq!(count, (0..10_000).filter(|i| i % 3 == 0).count());
}

#[tokio::test]
async fn the_detail_page_shows_everything_and_deletes_on_confirmation() {
    let app = with_admin(&[]).await;
    reply_to(&app, &text("oDel", "第一条", "501")).await;
    reply_to(&app, &click("oDel", "MENU_1")).await;
    reply_to(&app, &text("oKeep", "别删我", "502")).await;
    let (browser, csrf) = signed_in(&app).await;
    let page = browser.get("/admin/users/oDel").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("第一条") && page.body.contains("EventKey=MENU_1"));
    assert!(page.body.contains("/admin/messages?openid=oDel"));
    assert_eq!(browser.get("/admin/users/oNobody").await.status, 404);

    // Unconfirmed: nothing happens.
    let page = browser
        .post_form("/admin/users/oDel/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 303);
    assert!(app.store.user("oDel").await.unwrap().is_some());
    let page = browser
        .post_form(
            "/admin/users/oDel/delete",
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/admin/users"))
    );
    assert!(app.store.user("oDel").await.unwrap().is_none());
    assert_eq!(
        app.message_count().await,
        1,
        "their messages went with them, nobody else's"
    );
    assert_eq!(browser.get("/admin/users/oDel").await.status, 404);
}

#[tokio::test]
async fn the_message_list_filters_and_the_detail_shows_the_raw_xml() {
    let app = with_admin(&[]).await;
    reply_to(&app, &text("oM1", "a <b> & c", "601")).await;
    reply_to(&app, &event("oM2", "subscribe", unix_now())).await;
    reply_to(&app, &click("oM1", "K")).await;
    let (browser, _) = signed_in(&app).await;
    let ids = |body: &str| body.matches("href=\"/admin/messages/").count();
    assert_eq!(ids(&browser.get("/admin/messages").await.body), 3);
    assert_eq!(ids(&browser.get("/admin/messages?kind=text").await.body), 1);
    assert_eq!(
        ids(&browser.get("/admin/messages?kind=event").await.body),
        2
    );
    assert_eq!(
        ids(&browser
            .get("/admin/messages?kind=event%3Asubscribe")
            .await
            .body),
        1
    );
    assert_eq!(
        ids(&browser.get("/admin/messages?openid=oM1").await.body),
        2
    );
    let list = browser
        .get("/admin/messages?kind=event%3Asubscribe")
        .await
        .body;
    assert!(list.contains("[text] 欢迎关注"), "the reply sent is shown");

    let first = app
        .store
        .list_messages(&wxportal::store::MessageQuery {
            msg_type: Some("text".into()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let page = browser
        .get(&format!("/admin/messages/{}", first[0].id))
        .await;
    assert_eq!(page.status, 200);
    assert!(
        unescape(&page.body).contains("<Content><![CDATA[a <b> & c]]></Content>"),
        "the raw XML is shown as text: {}",
        page.body
    );
    assert!(!page.body.contains("<Content>"));
    assert!(page.body.contains("id=\"reply-xml\""));
    assert_eq!(browser.get("/admin/messages/99999").await.status, 404);
    assert_eq!(
        browser.get("/admin/messages/not-a-number").await.status,
        400
    );
}

#[tokio::test]
async fn the_dashboard_counts_and_charts_thirty_days() {
    let app = with_admin(&[]).await;
    reply_to(&app, &event("oD1", "subscribe", unix_now())).await;
    reply_to(&app, &text("oD1", "hi", "701")).await;
    reply_to(&app, &text("oD2", "hi", "702")).await;
    let (browser, _) = signed_in(&app).await;
    let page = browser.get("/admin").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"stat-subscribed\">2<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"stat-today\">3<"));
    assert!(page.body.contains("id=\"stat-30\">3<"));
    assert_eq!(page.body.matches("<rect class=\"chart__bar\"").count(), 30);
    assert!(
        page.body.contains("height=\"140\""),
        "today's bar is the tallest"
    );
}

#[tokio::test]
async fn admin_pages_carry_the_security_headers() {
    let app = with_admin(&[]).await;
    let (browser, _) = signed_in(&app).await;
    let client = wxportal::upstream::client_builder().build().unwrap();
    for path in ["/admin/login", "/admin", "/admin/users"] {
        let response = client
            .get(app.url(path))
            .header("cookie", browser.cookie().unwrap())
            .send()
            .await
            .unwrap();
        let h = response.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("<script"), "{path} has no scripts at all");
        assert!(!body.contains(" style=\""), "{path} has no inline styles");
    }
}

fn wxportal_admin(args: &[&str], db: &str, stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wxportal"))
        .arg("admin")
        .args(args)
        .env_clear()
        .env("WXPORTAL_DATABASE_URL", db)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_accounts_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("admins.db").display());
    let (ok, out) = wxportal_admin(&["list"], &db, "");
    assert!(ok, "{out}");
    assert!(out.contains("no admins yet"));
    let (ok, out) = wxportal_admin(&["create", "ops"], &db, "short\n");
    assert!(!ok && out.contains("at least 10 characters"), "{out}");
    let (ok, out) = wxportal_admin(&["create", "ops"], &db, "a long enough password\n");
    assert!(ok, "{out}");
    let (ok, out) = wxportal_admin(&["create", "OPS"], &db, "a long enough password\n");
    assert!(!ok && out.contains("exists"), "{out}");
    let (ok, out) = wxportal_admin(&["create", "bad name"], &db, "a long enough password\n");
    assert!(!ok && out.contains("letters, digits"), "{out}");
    let (ok, out) = wxportal_admin(&["list"], &db, "");
    assert!(ok && out.contains("ops") && out.contains("never"), "{out}");

    // The stored hash is argon2id, and the password signs in on a server using that database.
    let app = TestApp::spawn(&[("WXPORTAL_DATABASE_URL", &db)]).await;
    let stored = app.store.admin_by_name("ops").await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"));
    assert!(!stored.password_hash.contains("a long enough password"));
    let (_, page) = sign_in_as(&app, "ops", "a long enough password").await;
    assert_eq!(page.status, 303);

    let (ok, out) = wxportal_admin(&["passwd", "ops"], &db, "another good password\r\n");
    assert!(ok, "{out}");
    let (_, page) = sign_in_as(&app, "ops", "a long enough password").await;
    assert_eq!(page.status, 401);
    let (_, page) = sign_in_as(&app, "ops", "another good password").await;
    assert_eq!(page.status, 303);
    let (ok, out) = wxportal_admin(&["passwd", "nobody"], &db, "another good password\n");
    assert!(!ok && out.contains("no admin named"), "{out}");

    let (ok, out) = wxportal_admin(&["delete", "ops"], &db, "");
    assert!(ok, "{out}");
    let (ok, _) = wxportal_admin(&["delete", "ops"], &db, "");
    assert!(!ok);
    let (_, page) = sign_in_as(&app, "ops", "another good password").await;
    assert_eq!(page.status, 401);
}

#[tokio::test]
async fn the_demo_prints_a_fresh_admin_password_that_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    let mut passwords: Vec<String> = Vec::new();
    for _ in 0..2 {
        let (demo, banner) = wxportal::demo::build(&[
            ("WXPORTAL_BIND", "127.0.0.1:0".to_owned()),
            ("WXPORTAL_DATABASE_URL", db.clone()),
        ])
        .await
        .unwrap();
        let password = demo_password(&banner);
        assert_eq!(password.len(), 16);
        let base = format!("http://{}", demo.addr());
        let store = demo.state().store.clone();
        let stored = store
            .admin_by_name(wxportal::demo::DEMO_ADMIN)
            .await
            .unwrap()
            .unwrap();
        assert!(stored.password_hash.starts_with("$argon2id$"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(demo.run(async { stopped.await.unwrap_or(()) }));
        let browser = Browser::at(&base, browser_client());
        let page = sign_in_with(&browser, wxportal::demo::DEMO_ADMIN, &password).await;
        assert_eq!(page.status, 303, "the printed password signs in: {page:?}");
        assert_eq!(browser.get("/admin").await.status, 200);
        for old in &passwords {
            let page = sign_in_with(
                &Browser::at(&base, browser_client()),
                wxportal::demo::DEMO_ADMIN,
                old,
            )
            .await;
            assert_eq!(page.status, 401, "last start's password no longer works");
        }
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        passwords.push(password);
    }
    assert_ne!(passwords[0], passwords[1], "a new password at every start");
}
