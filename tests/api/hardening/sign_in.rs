//! Operator sign-in can be neither flooded nor locked from elsewhere; sign-ins renew the form token and log no typed text.

use super::*;

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

#[tokio::test(flavor = "multi_thread")]
async fn failed_sign_ins_log_the_address_and_a_hash_never_the_text_typed() {
    let db = TestDb::fresh().await;
    let server = ServerProcess::start(&db, &[]).await;
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
