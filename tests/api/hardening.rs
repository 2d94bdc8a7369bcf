//! What a stranger on the open Internet can and cannot do: cookie-less visits write nothing, per-client
//! limits answer 429 and recover, operator sign-in can be neither flooded nor locked from elsewhere.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sqlx::{Connection, SqliteConnection};

use crate::admin::{sign_in_with, with_admin};
use crate::helpers::*;
use crate::mock::{APPSECRET, MockWeChat, Scripted};

const PASSWORD: &str = "correct horse battery";
const EXCHANGE: &str = "/sns/oauth2/access_token";

/// Every table's row count.
async fn row_counts(app: &TestApp) -> Vec<(String, i64)> {
    let mut db = SqliteConnection::connect(&app.database_url())
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let mut counts = Vec::new();
    for table in tables {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{table}\""
        )))
        .fetch_one(&mut db)
        .await
        .unwrap();
        counts.push((table, n));
    }
    counts
}

async fn portal_with(vars: &[(&str, &str)]) -> (TestApp, MockWeChat) {
    let mock = MockWeChat::start().await;
    let mut all = vec![
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
        ("WXPORTAL_WECHAT_OPEN_URL", "http://open.wechat.test"),
    ];
    all.extend_from_slice(vars);
    (TestApp::spawn(&all).await, mock)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_cookie_less_visits_leave_every_table_as_it_was() {
    let (app, _mock) = portal_with(&[
        ("WXPORTAL_LIMIT_AUTH_LOGIN", "off"),
        ("WXPORTAL_LIMIT_AUTH_CALLBACK", "off"),
    ])
    .await;
    // Let start-up writes (the token renewal, the server key) settle first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = row_counts(&app).await;
    let paths = [
        "/",
        "/auth/login",
        "/auth/login?scope=snsapi_base&next=%2Fme%3Ftab%3D1",
        "/admin/login",
        "/admin/login?next=%2Fadmin%2Fusers",
        "/no/such/page",
        "/static/wxportal.css",
        "/qr.svg",
        "/me",
        "/admin",
    ];
    let statuses: Vec<u16> = futures_util::stream::iter(0..2000)
        .map(|i| {
            let url = app.url(paths[i % paths.len()]);
            let client = app.client.clone();
            async move {
                let response = client.get(url).send().await.unwrap();
                let sets_session = response
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .any(|c| c.to_str().unwrap().starts_with("wxportal_session="));
                assert!(!sets_session, "no session for a stranger");
                response.status().as_u16()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(
        statuses.iter().all(|s| [200, 302, 303, 404].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(row_counts(&app).await, before);
}

/// `n` GETs of `path` from one client: their statuses, and the last Retry-After.
async fn hammer(app: &TestApp, path: &str, n: usize) -> (Vec<u16>, Option<u64>) {
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..n {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if let Some(v) = response.headers().get("retry-after") {
            retry_after = Some(v.to_str().unwrap().parse().unwrap());
        }
    }
    (statuses, retry_after)
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_answer_429_with_retry_after_and_recover_after_the_window() {
    let (app, _mock) = portal_with(&[
        ("WXPORTAL_LIMIT_AUTH_LOGIN", "3/3s"),
        ("WXPORTAL_LIMIT_JSSDK", "3/3s"),
    ])
    .await;
    let jssdk = format!(
        "/jssdk/config?url={}",
        urlencoding::encode(&format!("{PUBLIC_URL}/"))
    );
    for path in ["/auth/login", jssdk.as_str()] {
        let (statuses, retry_after) = hammer(&app, path, 5).await;
        assert!(
            statuses[..3].iter().all(|s| *s != 429),
            "{path}: {statuses:?}"
        );
        assert_eq!(&statuses[3..], [429, 429], "{path}");
        let wait = retry_after.expect("a Retry-After");
        assert!((1..=3).contains(&wait), "{wait}");
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let (statuses, _) = hammer(&app, path, 1).await;
        assert_ne!(statuses[0], 429, "{path}: the window passed");
    }
    // The refusal is a page where pages are drawn.
    let (statuses, _) = hammer(&app, "/auth/login", 5).await;
    assert_eq!(statuses[4], 429);
    let body = app
        .client
        .get(app.url("/auth/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("操作太频繁") && body.contains("weui-msg"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_sign_in_form_is_limited_per_client_but_its_page_is_not() {
    let app = with_admin(&[("WXPORTAL_LIMIT_ADMIN_LOGIN", "2/10s")]).await;
    let browser = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(browser.get("/admin/login").await.status, 200);
    }
    let csrf = browser.get("/admin/login").await.csrf();
    let form = [("csrf", csrf.as_str()), ("name", "ops"), ("password", "x")];
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(browser.post_form("/admin/login", &form).await.status);
    }
    assert_eq!(statuses, [401, 401, 429]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let page = sign_in_with(&browser, "ops", PASSWORD).await;
    assert_eq!(page.status, 303, "{page:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn junk_codes_cannot_spend_the_accounts_exchange_quota() {
    let (app, mock) = portal_with(&[("WXPORTAL_LIMIT_CODE_EXCHANGE", "3/3m")]).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        // Each with a fresh, validly signed state, and no cookie: the cheapest attack there is.
        let browser = Browser::new(&app);
        let state = browser.start_login("").await;
        browser.forget_cookies();
        statuses.push(browser.callback(&format!("junk{i}"), &state).await.status);
    }
    assert_eq!(statuses[..3], [400, 400, 400], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    assert_eq!(mock.calls(EXCHANGE), 3, "a burst, then nothing");
    // Past the limit nothing is stored for the state either.
    assert_eq!(
        row_counts(&app)
            .await
            .into_iter()
            .find(|(t, _)| t == "oauth_states")
            .unwrap()
            .1,
        3
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_ticket_is_remembered_instead_of_asked_for_each_visitor() {
    let mock = MockWeChat::start().await;
    for _ in 0..50 {
        mock.script("/cgi-bin/stable_token", Scripted::Errcode(40164));
    }
    let app = TestApp::spawn(&[
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
        ("WXPORTAL_LIMIT_JSSDK", "off"),
    ])
    .await;
    let url = app.url(&format!(
        "/jssdk/config?url={}",
        urlencoding::encode(&format!("{PUBLIC_URL}/"))
    ));
    for _ in 0..40 {
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 503);
    }
    // One fetch at start-up, one for the first visitor; the other 39 got the remembered refusal.
    assert!(
        mock.calls("/cgi-bin/stable_token") <= 2,
        "{}",
        mock.calls("/cgi-bin/stable_token")
    );
}

/// Posts the sign-in form from `address` (as the proxy says) with a fresh form of its own.
async fn attempt(app: &TestApp, address: &str, name: &str, password: &str) -> (u16, Duration) {
    let browser = Browser::new(app);
    let csrf = browser.get("/admin/login").await.csrf();
    let started = Instant::now();
    let response = app
        .client
        .post(app.url("/admin/login"))
        .header("cookie", browser.cookie().unwrap())
        .header("x-forwarded-for", format!("10.9.9.9, {address}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", name),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), started.elapsed())
}

async fn proxied_admin() -> TestApp {
    with_admin(&[
        ("WXPORTAL_CLIENT_IP_HEADER", "X-Forwarded-For"),
        ("WXPORTAL_LIMIT_ADMIN_LOGIN", "off"),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_concurrent_wrong_passwords_with_one_form_cannot_slip_past_the_limit() {
    let app = proxied_admin().await;
    let browser = Browser::new(&app);
    let csrf = browser.get("/admin/login").await.csrf();
    let cookie = browser.cookie().unwrap();
    let statuses = futures_util::future::join_all((0..30).map(|_| {
        let request = app
            .client
            .post(app.url("/admin/login"))
            .header("cookie", cookie.clone())
            .header("x-forwarded-for", "203.0.113.50")
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", "ops"),
                ("password", "wrong password!"),
            ]);
        async move { request.send().await.unwrap().status().as_u16() }
    }))
    .await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        checked <= 5,
        "{checked} passwords were checked: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [401, 429].contains(s)),
        "{statuses:?}"
    );
    // The right password from there is refused unchecked now; from elsewhere the operator gets in.
    assert_eq!(attempt(&app, "203.0.113.50", "ops", PASSWORD).await.0, 429);
    assert_eq!(attempt(&app, "198.51.100.7", "ops", PASSWORD).await.0, 303);
}

#[tokio::test(flavor = "multi_thread")]
async fn more_password_checks_than_cores_at_once_are_refused() {
    let app = proxied_admin().await;
    let cores = std::thread::available_parallelism().unwrap().get();
    let attempts = (0..24).map(|i| {
        let app = &app;
        async move {
            let name = format!("user{i}");
            attempt(app, &format!("192.0.2.{i}"), &name, "wrong password!")
                .await
                .0
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let busy = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        statuses.iter().all(|s| [401, 429].contains(s)),
        "{statuses:?}"
    );
    assert!(busy >= 1, "24 at once on {cores} cores: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_over_1024_bytes_is_refused_before_hashing() {
    let app = proxied_admin().await;
    let long = "x".repeat(1025);
    let (status, took) = attempt(&app, "203.0.113.60", "ops", &long).await;
    assert_eq!(status, 400);
    assert!(
        took < Duration::from_millis(900),
        "no failure delay, no hash: {took:?}"
    );
    // It was not counted as an attempt either.
    let counts = row_counts(&app).await;
    assert_eq!(
        counts
            .iter()
            .find(|(t, _)| t == "login_failures")
            .unwrap()
            .1,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_header_is_read_from_the_right_so_a_client_cannot_pick_its_address() {
    let app = proxied_admin().await;
    // The client writes a new address in front each time; the proxy appends the real one.
    for i in 0..5 {
        let (status, _) = attempt_with_spoof(&app, &format!("1.1.1.{i}"), "wrong password!").await;
        assert_eq!(status, 401);
    }
    let (status, _) = attempt_with_spoof(&app, "1.1.1.99", PASSWORD).await;
    assert_eq!(
        status, 429,
        "the same real address, whatever the client wrote"
    );
}

async fn attempt_with_spoof(app: &TestApp, spoof: &str, password: &str) -> (u16, Duration) {
    attempt(app, &format!("{spoof}, 203.0.113.77"), "ops", password).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_name_attacked_from_many_addresses_slows_down_but_its_owner_still_signs_in() {
    let app = proxied_admin().await;
    // 16 failures, each from an address of its own (two at a time: no more checks than cores).
    for pair in (0..16).collect::<Vec<u32>>().chunks(2) {
        let attempts = pair.iter().map(|i| {
            let app = &app;
            async move { attempt(app, &format!("198.51.100.{i}"), "ops", "wrong password!").await }
        });
        for (status, _) in futures_util::future::join_all(attempts).await {
            assert_eq!(status, 401);
        }
    }
    let (status, took) = attempt(&app, "2001:db8:7:7::1", "ops", PASSWORD).await;
    assert_eq!(status, 303, "the owner is slowed, not locked out");
    assert!(took >= Duration::from_millis(1500), "{took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_sign_in_replaces_the_form_token() {
    let (app, mock) = portal_with(&[]).await;
    let browser = Browser::new(&app);
    let before = browser.get("/admin/login").await.csrf();
    let state = browser.start_login("").await;
    let code = mock.issue_code("oTokens", "snsapi_userinfo");
    assert_eq!(browser.callback(&code, &state).await.status, 302);
    // The token of a form drawn before sign-in no longer signs the follower out.
    let page = browser
        .post_form("/auth/logout", &[("csrf", &before)])
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(browser.get("/me").await.status, 200);
}

/// Posts `body` under an already signed query.
async fn post_under(app: &TestApp, query: &[(&'static str, String)], body: &str) -> (u16, String) {
    let signed = wxportal::wechat::push::SignedPush {
        query: query.to_vec(),
        body: body.to_owned(),
        plaintext: String::new(),
    };
    app.post_signed(&signed).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_query_is_good_for_one_body_only_across_restarts() {
    use wxportal::wechat::MessageMode;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let app = TestApp::spawn_in(dir.clone(), &[]).await;
    let now = wxportal::time::unix_now().to_string();
    let first = text("oReal", "你好", "5001").sign(TOKEN, MessageMode::Plain, None, &now, "777");
    let (status, reply) = app.post_signed(&first).await;
    assert_eq!(status, 200);
    // The query as a proxy's access log kept it, with a body of the attacker's choosing.
    let forged = text("oReal", "把我的积分转走", "5002").to_xml();
    assert_eq!(post_under(&app, &first.query, &forged).await.0, 403);
    let other_sender = text("oSomeoneElse", "hi", "5003").to_xml();
    assert_eq!(post_under(&app, &first.query, &other_sender).await.0, 403);
    // The same body again is WeChat's retry: the stored reply.
    assert_eq!(
        post_under(&app, &first.query, &first.body).await,
        (200, reply)
    );
    assert_eq!(app.message_count().await, 1);
    // And after a restart, still refused.
    app.stop().await;
    let app = TestApp::spawn_in(dir, &[]).await;
    assert_eq!(post_under(&app, &first.query, &forged).await.0, 403);
    assert_eq!(app.message_count().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_query_with_a_changed_body_under_the_same_msg_id_is_refused() {
    use wxportal::wechat::MessageMode;
    let app = TestApp::spawn(&[]).await;
    let now = wxportal::time::unix_now().to_string();
    let first = text("oReal", "原文", "6001").sign(TOKEN, MessageMode::Plain, None, &now, "778");
    assert_eq!(app.post_signed(&first).await.0, 200);
    let changed = text("oReal", "改过的", "6001").to_xml();
    assert_eq!(post_under(&app, &first.query, &changed).await.0, 403);
    let stored = app.store.recent_messages(5).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].message.raw_xml.contains("原文"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_can_claim_another_followers_msg_id_before_it_arrives() {
    let app = TestApp::spawn(&[]).await;
    use wxportal::wechat::MessageMode;
    assert_eq!(
        app.post(
            &text("oAttacker", "抢先", "9000000001"),
            MessageMode::Plain,
            None
        )
        .await
        .0,
        200
    );
    let (status, _) = app
        .post(
            &text("oVictim", "真的消息", "9000000001"),
            MessageMode::Plain,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let stored = app.store.recent_messages(5).await.unwrap();
    assert_eq!(
        stored.len(),
        2,
        "the victim's message is stored, not taken as a retry"
    );
    assert!(stored.iter().any(|m| m.message.openid == "oVictim"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compatible_body_is_read_from_its_ciphertext_never_the_plaintext_beside_it() {
    use wxportal::wechat::MessageMode;
    let app = TestApp::spawn(&[
        ("WXPORTAL_ENCODING_AES_KEY", AES_KEY),
        ("WXPORTAL_MESSAGE_MODE", "compat"),
    ])
    .await;
    let c = crypto(AES_KEY);
    let now = wxportal::time::unix_now().to_string();
    let signed =
        text("oReal", "真的", "7001").sign(TOKEN, MessageMode::Compat, Some(&c), &now, "99");
    // The plaintext copy rewritten, and `encrypt_type` dropped so that it would be the one read.
    let tampered_body = signed
        .body
        .replace("真的", "伪造")
        .replace("oReal", "oForged");
    let query: Vec<_> = signed
        .query
        .iter()
        .filter(|(k, _)| *k != "encrypt_type")
        .cloned()
        .collect();
    let (status, _) = post_under(&app, &query, &tampered_body).await;
    assert_eq!(status, 200);
    let stored = app.store.recent_messages(5).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].message.openid, "oReal");
    assert!(
        stored[0].message.raw_xml.contains("真的") && !stored[0].message.raw_xml.contains("伪造")
    );
    // Without a valid msg_signature over the ciphertext, nothing at all.
    let unsigned: Vec<_> = query
        .iter()
        .filter(|(k, _)| *k != "msg_signature")
        .cloned()
        .collect();
    let other =
        text("oReal", "再来", "7002").sign(TOKEN, MessageMode::Compat, Some(&c), &now, "98");
    let unsigned: Vec<_> = other
        .query
        .iter()
        .filter(|(k, _)| *k != "msg_signature" && *k != "encrypt_type")
        .cloned()
        .chain(unsigned.into_iter().filter(|_| false))
        .collect();
    assert_eq!(post_under(&app, &unsigned, &other.body).await.0, 400);
    assert_eq!(app.message_count().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_are_cut_off_and_cannot_starve_the_webhook() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wxportal::wechat::MessageMode;
    let app = TestApp::spawn(&[]).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // 50 connections sending their headers a byte every 2 seconds, for up to 20 seconds.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"POST /wechat HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut buf = [0u8; 256];
            while started.elapsed() < Duration::from_secs(20) {
                tokio::select! {
                    // The server answered (408) or closed: it cut the client off.
                    read = stream.read(&mut buf) => {
                        let _ = read;
                        return Some(started.elapsed());
                    }
                    () = tokio::time::sleep(Duration::from_secs(2)) => {
                        if stream.write_all(b"X").await.is_err() {
                            return Some(started.elapsed());
                        }
                    }
                }
            }
            None
        }));
    }
    // And a kept-alive connection that goes quiet after one request.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    let idle = tokio::spawn(async move {
        let started = Instant::now();
        let closed = idle.read(&mut answer).await.unwrap_or(0);
        (closed, started.elapsed())
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let (status, _) = app
        .post(&text("oReal", "你好", "8801"), MessageMode::Plain, None)
        .await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let (read, idle_for) = idle.await.unwrap();
    assert_eq!(read, 0, "closed, not answered");
    assert!(
        idle_for >= Duration::from_secs(9) && idle_for < Duration::from_secs(14),
        "{idle_for:?}"
    );
    for conn in slow {
        let cut_after = conn.await.unwrap().expect("the slow client was cut off");
        assert!(
            cut_after >= Duration::from_secs(9) && cut_after < Duration::from_secs(14),
            "{cut_after:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_64_kib_are_refused_on_every_route_that_takes_one() {
    let app = with_admin(&[]).await;
    let big = "x=".to_owned() + &"a".repeat(70 * 1024);
    for path in ["/admin/login", "/auth/logout", "/me/refresh", "/me/delete"] {
        let response = app
            .client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{path}");
    }
    // The webhook too, signed.
    let query = signed_query(&wxportal::time::unix_now().to_string());
    let (status, _) = app
        .post_raw(
            &query,
            Some("text/xml"),
            "<xml>".to_owned() + &"a".repeat(70 * 1024),
        )
        .await;
    assert_eq!(status, 413);
    // And a signed-in operator's form.
    let (browser, csrf) = crate::admin::signed_in(&app).await;
    let content = "a".repeat(70 * 1024);
    let page = browser
        .post_form(
            "/admin/replies/new",
            &[
                ("csrf", &csrf),
                ("reply_type", "text"),
                ("content", &content),
            ],
        )
        .await;
    assert_eq!(page.status, 413);
}

#[tokio::test(flavor = "multi_thread")]
async fn personal_pages_are_never_cached_and_https_brings_hsts() {
    let (app, mock) = portal_with(&[]).await;
    let browser = Browser::new(&app);
    let state = browser.start_login("").await;
    let code = mock.issue_code("oPrivate", "snsapi_userinfo");
    browser.callback(&code, &state).await;
    let cookie = browser.cookie().unwrap();
    for path in ["/me", "/me/delete"] {
        let response = app
            .client
            .get(app.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        assert!(!response.headers().contains_key("strict-transport-security"));
    }
    let https = TestApp::spawn(&[("WXPORTAL_PUBLIC_URL", "https://portal.test")]).await;
    for path in ["/", "/healthz", "/admin/login"] {
        let response = https.client.get(https.url(path)).send().await.unwrap();
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openid_with_slashes_dots_or_hashes_stays_one_path_segment() {
    use wxportal::wechat::MessageMode;
    let app = with_admin(&[]).await;
    let odd = "o/../x?y#z";
    let (status, _) = app
        .post(&text(odd, "hi", "8901"), MessageMode::Plain, None)
        .await;
    assert_eq!(status, 200);
    let (browser, _) = crate::admin::signed_in(&app).await;
    let encoded = "/admin/users/o%2F..%2Fx%3Fy%23z";
    for list in ["/admin/users", "/admin/messages", "/admin/messages/1"] {
        let page = browser.get(list).await;
        assert!(page.body.contains(encoded), "{list}: {}", page.body);
    }
    let detail = browser.get(encoded).await;
    assert_eq!(detail.status, 200);
    assert!(detail.body.contains(odd));
    assert!(
        detail
            .body
            .contains("action=\"/admin/users/o%2F..%2Fx%3Fy%23z/delete\"")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_text_column_of_the_csv_is_defused_the_openid_too() {
    use wxportal::wechat::MessageMode;
    let app = with_admin(&[]).await;
    let (status, _) = app
        .post(
            &text("=HYPERLINK(\"x\")", "hi", "8902"),
            MessageMode::Plain,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (browser, _) = crate::admin::signed_in(&app).await;
    let csv = browser.get("/admin/users.csv").await.body;
    assert!(csv.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{csv}");
}

/// The address `port` is listened on, from the kernel's table: `0100007F` is 127.0.0.1.
fn listening_address(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (addr, hex_port) = fields.get(1)?.split_once(':')?;
        let listening = fields.get(3) == Some(&"0A");
        (listening && u16::from_str_radix(hex_port, 16).ok()? == port).then(|| addr.to_owned())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_listens_on_loopback_whatever_the_environment_says() {
    let dir = tempfile::tempdir().unwrap();
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    for (listen, expected) in [(None, "0100007F"), (Some("0.0.0.0"), "00000000")] {
        let port = free_port();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wxportal"));
        cmd.arg("demo")
            .env_clear()
            .env("WXPORTAL_BIND", format!("0.0.0.0:{port}"))
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if let Some(ip) = listen {
            cmd.arg("--listen").arg(format!("{ip}:{port}"));
        }
        let mut child = cmd.spawn().unwrap();
        let up = eventually(20, || listening_address(port).is_some()).await;
        let address = listening_address(port);
        child.kill().unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(up, "{stderr}");
        assert_eq!(address.as_deref(), Some(expected), "{stderr}");
        if listen.is_some() {
            assert!(stderr.contains("WARNING"), "{stderr}");
        } else {
            assert!(stderr.contains("127.0.0.1"), "{stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulator_gives_codes_only_to_the_public_origin() {
    let (base, _dir, _) = spawn_demo().await;
    let client = wxportal::upstream::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for evil in [
        format!("{base}.evil.example/auth/callback"),
        format!("{base}@evil.example/auth/callback"),
        base.replace("http://", "https://") + "/auth/callback",
    ] {
        let response = simulator_allows(&client, &base, &evil).await;
        assert!(
            response.headers().get("location").is_none(),
            "{evil}: {:?}",
            response.headers().get("location")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_the_database_refuses_does_not_fail_those_committed_with_it() {
    use wxportal::wechat::MessageMode;
    let app = std::sync::Arc::new(TestApp::spawn(&[]).await);
    {
        let mut db = SqliteConnection::connect(&app.database_url())
            .await
            .unwrap();
        sqlx::query(
            "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.openid = 'oPoison'
             BEGIN SELECT RAISE(ABORT, 'refused for the test'); END",
        )
        .execute(&mut db)
        .await
        .unwrap();
    }
    // Sent together, so that the writer commits them in shared batches.
    let sends = (0..40).map(|i| {
        let app = app.clone();
        async move {
            let from = if i % 10 == 0 {
                "oPoison".to_owned()
            } else {
                format!("oFine{i}")
            };
            let status = app
                .post(
                    &text(&from, "hi", &format!("77{i:04}")),
                    MessageMode::Plain,
                    None,
                )
                .await
                .0;
            (from, status)
        }
    });
    for (from, status) in futures_util::future::join_all(sends).await {
        let expected = if from == "oPoison" { 503 } else { 200 };
        assert_eq!(status, expected, "{from}");
    }
    assert_eq!(app.message_count().await, 36);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_sign_ins_log_the_address_and_a_hash_never_the_text_typed() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]).await;
    let browser = Browser::at(
        &server.base,
        wxportal::upstream::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    );
    let csrf = browser.get("/admin/login").await.csrf();
    // A password typed into the name field, as people do.
    let page = browser
        .post_form(
            "/admin/login",
            &[
                ("csrf", &csrf),
                ("name", "MyS3cretPassw0rd"),
                ("password", "another-secret-9"),
            ],
        )
        .await;
    assert_eq!(page.status, 401);
    let log = server.log();
    assert!(
        log.contains("sign-in failed") && log.contains("127.0.0.1"),
        "{log}"
    );
    assert!(
        !log.contains("MyS3cretPassw0rd") && !log.contains("another-secret-9"),
        "{log}"
    );
}
