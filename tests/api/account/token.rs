//! The shared access_token and jsapi_ticket: one fetch for many needs and across processes, renewed ahead, recovered after 40001, `-1` retried with backoff, quotas shown; the JS-SDK config.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_concurrent_needs_cause_one_token_fetch() {
    let mock = MockWeChat::start().await;
    // Slow answers, so every need arrives while the one fetch is still running.
    mock.set_token_delay(Duration::from_millis(400));
    let app = TestApp::spawn(&[
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", &mock.base),
    ])
    .await;
    let page = format!("{PUBLIC_URL}/");
    let answers = futures_util::future::join_all(
        (0..100).map(|_| jssdk_config(&app.client, &app.base, &page)),
    )
    .await;
    assert_eq!(mock.calls(STABLE), 1, "one token fetch for 100 needs");
    assert_eq!(mock.calls(TICKET), 1, "one ticket fetch for 100 needs");
    let ticket = stored_ticket(&app).await;
    for (status, config) in answers {
        assert_eq!(status, 200, "{config}");
        assert_eq!(config["appId"], APPID);
        assert_eq!(
            config["signature"].as_str().unwrap(),
            expected_signature(&ticket, &config, &page)
        );
    }
    // The dashboard shows the token's age and the day's count.
    let (browser, _) = signed_in_new_admin(&app).await;
    let dashboard = browser.get("/admin").await.body;
    assert!(dashboard.contains("分钟后过期"), "{dashboard}");
    assert!(dashboard.contains("1 / 2000"), "{dashboard}");
}

/// `with_admin`'s admin on an app started without it.
async fn signed_in_new_admin(app: &TestApp) -> (Browser, String) {
    let hash = wxportal::passwords::hash("correct horse battery").unwrap();
    app.store.create_admin("ops", &hash).await.unwrap();
    signed_in(app).await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_server_processes_on_one_database_fetch_once() {
    let mock = MockWeChat::start().await;
    mock.set_token_delay(Duration::from_millis(500));
    let db = TestDb::fresh().await;
    let vars = [
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
    ];
    // The first creates the database; then both run at once, each renewing ahead and serving needs.
    let first = ServerProcess::start(&db, &vars).await;
    let second = ServerProcess::start(&db, &vars).await;
    let client = wxportal::upstream::client_builder().build().unwrap();
    let page = format!("{PUBLIC_URL}/");
    let answers = futures_util::future::join_all((0..40).map(|i| {
        let base = if i % 2 == 0 {
            &first.base
        } else {
            &second.base
        };
        let (client, page) = (client.clone(), page.clone());
        async move { jssdk_config(&client, base, &page).await }
    }))
    .await;
    for (status, config) in &answers {
        assert_eq!(*status, 200, "{config}");
    }
    assert_eq!(mock.calls(STABLE), 1, "two processes, one token fetch");
    assert_eq!(mock.calls(TICKET), 1, "two processes, one ticket fetch");
    // Every call was made with that one token.
    let used = mock.tokens_used(TICKET);
    assert_eq!(used.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_renewed_ahead_of_expiry() {
    let mock = MockWeChat::start().await;
    // 242 s: due for renewal (4 minutes ahead) almost at once.
    mock.set_token_lifetime(242);
    let app = TestApp::spawn(&[
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", &mock.base),
    ])
    .await;
    assert!(eventually(5, || mock.calls(STABLE) == 1).await);
    let first = app.store.credential("access_token").await.unwrap();
    // Renewed by the background task, with nobody asking, and not in a hot loop.
    assert!(eventually(15, || mock.calls(STABLE) == 2).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mock.calls(STABLE), 2);
    let second = app.store.credential("access_token").await.unwrap();
    assert_ne!(first.value, second.value);
    assert!(second.expires_at > first.expires_at);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_is_renewed_once_and_the_call_tried_again() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "push"),
        ("b1_name", "今日"),
        ("b1_type", "click"),
        ("b1_value", "TODAY"),
    ];
    assert_eq!(browser.post_form("/admin/menu", &form).await.status, 200);
    // Another party invalidates the token (a classic cgi-bin/token fetch elsewhere, say).
    mock.revoke_account_tokens();
    let page = browser.post_form("/admin/menu", &form).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let used = mock.tokens_used(MENU_CREATE);
    assert_eq!(used.len(), 3, "ok, 40001, then ok with a new token");
    assert_eq!(used[0], used[1]);
    assert_ne!(used[1], used[2]);
    assert_eq!(mock.calls(STABLE), 2);

    // A second refusal in a row is not retried forever: one renewal, then the error is shown.
    mock.script(MENU_CREATE, Scripted::Errcode(40001));
    mock.script(MENU_CREATE, Scripted::Errcode(40001));
    let page = browser.post_form("/admin/menu", &form).await;
    assert_eq!(page.status, 502);
    assert!(unescape(&page.body).contains("40001"), "{}", page.body);
    assert_eq!(mock.calls(MENU_CREATE), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_wechat_is_retried_with_backoff() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "push"),
        ("b1_name", "官网"),
        ("b1_type", "view"),
        ("b1_value", "https://example.com/"),
    ];
    mock.script(MENU_CREATE, Scripted::Errcode(-1));
    mock.script(MENU_CREATE, Scripted::Errcode(-1));
    let started = Instant::now();
    let page = browser.post_form("/admin/menu", &form).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(mock.calls(MENU_CREATE), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "paused 250 ms, then 750 ms"
    );
    // Three busy answers in a row: given up, and said so.
    for _ in 0..3 {
        mock.script(MENU_CREATE, Scripted::Errcode(-1));
    }
    let page = browser.post_form("/admin/menu", &form).await;
    assert_eq!(page.status, 502);
    assert!(
        unescape(&page.body).contains("system busy"),
        "{}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_errors_are_shown_on_the_dashboard() {
    let mock = MockWeChat::start().await;
    mock.script(STABLE, Scripted::Errcode(45009));
    let app = with_admin(&[
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", &mock.base),
    ])
    .await;
    // The renewal at start-up met the quota.
    assert!(eventually(5, || mock.calls(STABLE) == 1).await);
    let (browser, _) = signed_in(&app).await;
    let dashboard = unescape(&browser.get("/admin").await.body);
    assert!(dashboard.contains("上次获取失败"), "{dashboard}");
    assert!(dashboard.contains("45009"), "{dashboard}");
    assert!(dashboard.contains("daily quota"), "{dashboard}");
    // The next need fetches successfully, and the error is cleared.
    let (status, _) = jssdk_config(&app.client, &app.base, &format!("{PUBLIC_URL}/")).await;
    assert_eq!(status, 200);
    let dashboard = browser.get("/admin").await.body;
    assert!(!dashboard.contains("上次获取失败"), "{dashboard}");
    assert!(dashboard.contains("2 / 2000"), "{dashboard}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_classic_token_api_is_used_when_configured() {
    let mock = MockWeChat::start().await;
    let app = TestApp::spawn(&[
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", &mock.base),
        ("WXPORTAL_ACCESS_TOKEN_API", "token"),
    ])
    .await;
    let (status, _) = jssdk_config(&app.client, &app.base, &format!("{PUBLIC_URL}/")).await;
    assert_eq!(status, 200);
    assert_eq!(mock.calls("/cgi-bin/token"), 1);
    assert_eq!(mock.calls(STABLE), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jssdk_config_is_for_our_own_pages_only() {
    let (app, _mock) = account().await;
    let page = format!("{PUBLIC_URL}/me?from=singlemessage");
    let (status, config) =
        jssdk_config(&app.client, &app.base, &format!("{page}#wechat_redirect")).await;
    assert_eq!(status, 200, "{config}");
    let ticket = stored_ticket(&app).await;
    assert_eq!(
        config["signature"].as_str().unwrap(),
        expected_signature(&ticket, &config, &page),
        "signed without the fragment"
    );
    assert_eq!(config["nonceStr"].as_str().unwrap().len(), 16);
    assert!((config["timestamp"].as_i64().unwrap() - unix_now()).abs() < 5);
    for other in [
        "https://evil.example/",
        "http://portal.test.evil.example/",
        "https://portal.test/",
        "javascript:alert(1)",
        "",
    ] {
        let (status, body) = jssdk_config(&app.client, &app.base, other).await;
        assert_eq!(status, 400, "{other}: {body}");
        assert!(body["error"].is_string());
    }
    // The guide page uses it inside WeChat only.
    let guide = Browser::new(&app).get("/").await.body;
    assert!(guide.contains("/static/share.js"));
    assert!(guide.contains(&format!("data-image=\"{PUBLIC_URL}/static/logo.svg\"")));
    let desktop = app.client.get(app.url("/")).send().await.unwrap();
    assert!(!desktop.text().await.unwrap().contains("share.js"));
    let script = app
        .client
        .get(app.url("/static/share.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("/jssdk/config?url="));
}
