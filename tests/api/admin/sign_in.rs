//! Signing in and out, the guard in front of every admin route, CSRF and the sign-in limits.

use super::*;

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
