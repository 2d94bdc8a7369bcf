//! The callback: repeats, replays, lost cookies, forged and spent states, refusals, two instances.

use super::*;

#[tokio::test]
async fn a_reloaded_callback_goes_straight_on_without_a_second_exchange() {
    let (app, mock) = portal().await;
    let browser = Browser::new(&app);
    let state = browser.start_login("?next=/me%3Ftab%3D1").await;
    let code = mock.issue_code("oReload", "snsapi_userinfo");
    let first = browser.callback(&code, &state).await;
    let again = browser.callback(&code, &state).await;
    assert_eq!(first.location.as_deref(), Some("/me?tab=1"));
    assert_eq!(again.location.as_deref(), Some("/me?tab=1"));
    assert_eq!(mock.calls(EXCHANGE), 1);
}

#[tokio::test]
async fn duplicate_callbacks_at_the_same_moment_exchange_the_code_once() {
    let (app, mock) = portal().await;
    mock.set_exchange_delay(Duration::from_millis(300));
    let browser = Arc::new(Browser::new(&app));
    let state = browser.start_login("").await;
    let code = mock.issue_code("oDouble", "snsapi_userinfo");
    let tries: Vec<_> = (0..3)
        .map(|_| {
            let (browser, code, state) = (browser.clone(), code.clone(), state.clone());
            tokio::spawn(async move { browser.callback(&code, &state).await })
        })
        .collect();
    for t in tries {
        let page = t.await.unwrap();
        assert_eq!(
            (page.status, page.location.as_deref()),
            (302, Some("/me")),
            "{page:?}"
        );
    }
    assert_eq!(mock.calls(EXCHANGE), 1);
    assert_eq!(browser.get("/me").await.status, 200);
}

#[tokio::test]
async fn a_callback_replayed_from_elsewhere_starts_afresh_and_signs_no_one_in() {
    let (app, mock) = portal().await;
    let follower = Browser::new(&app);
    let state = follower.start_login("").await;
    let code = mock.issue_code("oVictim", "snsapi_userinfo");
    assert_eq!(
        follower.callback(&code, &state).await.location.as_deref(),
        Some("/me")
    );

    // The same link opened on another phone (a shared link, a replay): a fresh authorization.
    let other = Browser::new(&app);
    let replay = other.callback(&code, &state).await;
    assert_eq!(replay.status, 302);
    assert!(replay.location.unwrap().starts_with("/auth/login?"));
    assert_eq!(other.get("/me").await.status, 302, "not signed in");
    assert_eq!(mock.calls(EXCHANGE), 1);
}

#[tokio::test]
async fn a_callback_whose_cookie_was_lost_is_accepted_on_its_signed_state() {
    let (app, mock) = portal().await;
    let browser = Browser::new(&app);
    let state = browser.start_login("").await;
    browser.forget_cookies();
    let code = mock.issue_code("oNoCookie", "snsapi_userinfo");
    let page = browser.callback(&code, &state).await;
    assert_eq!(page.location.as_deref(), Some("/me"));
    assert_eq!(browser.get("/me").await.status, 200);
}

#[tokio::test]
async fn a_state_from_another_session_is_not_accepted_when_the_cookie_came_back() {
    let (app, mock) = portal().await;
    let attacker = Browser::new(&app);
    let attackers_state = attacker.start_login("").await;
    let attackers_code = mock.issue_code("oAttacker", "snsapi_userinfo");

    let victim = Browser::new(&app);
    victim.start_login("").await;
    let page = victim.callback(&attackers_code, &attackers_state).await;
    assert!(page.location.unwrap().starts_with("/auth/login?"));
    assert_eq!(
        mock.calls(EXCHANGE),
        0,
        "the attacker's code is never exchanged"
    );
    assert_eq!(victim.get("/me").await.status, 302);
}

#[tokio::test]
async fn a_used_state_with_another_code_is_refused_with_a_page() {
    let (app, mock) = portal().await;
    let browser = Browser::new(&app);
    let state = browser.start_login("").await;
    let first = mock.issue_code("oOnce", "snsapi_userinfo");
    browser.callback(&first, &state).await;
    browser.forget_cookies();
    let second = mock.issue_code("oOnce", "snsapi_userinfo");
    let page = browser.callback(&second, &state).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("授权链接已失效") && page.body.contains("id=\"retry\""));
    assert_eq!(mock.calls(EXCHANGE), 1);
}

#[tokio::test]
async fn forged_missing_and_expired_states_are_refused_with_pages() {
    let (app, mock) = portal().await;
    let browser = Browser::new(&app);
    let code = mock.issue_code("oForged", "snsapi_userinfo");
    for query in [
        format!("/auth/callback?code={code}&state=forged123"),
        format!("/auth/callback?code={code}"),
        format!("/auth/callback?code={code}&state={}", "a".repeat(82)),
    ] {
        let page = browser.get(&query).await;
        assert_eq!(page.status, 400, "{query}");
        assert!(
            page.body.contains("weui-msg"),
            "an HTML page: {}",
            page.body
        );
    }
    let (expired, _) =
        app.keys
            .state
            .issue(wxportal::time::unix_now() - 601, "snsapi_userinfo", "/me");
    let page = browser.callback(&code, &expired).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("超时"));
    assert_eq!(mock.calls(EXCHANGE), 0);
    assert_eq!(app.store.count_users().await.unwrap(), 0);
}

#[tokio::test]
async fn next_is_only_ever_a_local_path() {
    let (app, mock) = portal().await;
    for next in [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ] {
        let browser = Browser::new(&app);
        let encoded = urlencoding::encode(next);
        let page = authorize(&browser, &mock, "oRedirect", &format!("?next={encoded}")).await;
        assert_eq!(page.location.as_deref(), Some("/me"), "next={next}");
    }
}

#[tokio::test]
async fn a_refusal_is_a_page_and_spends_the_state() {
    let (app, mock) = portal().await;
    let browser = Browser::new(&app);
    let state = browser.start_login("?scope=snsapi_userinfo&next=/me").await;
    let page = browser.get(&format!("/auth/callback?state={state}")).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("未完成授权"), "{}", page.body);
    assert!(
        page.body
            .contains("/auth/login?scope=snsapi_userinfo&#38;next=%2Fme"),
        "{}",
        page.body
    );
    let code = mock.issue_code("oRefuser", "snsapi_userinfo");
    assert_eq!(browser.callback(&code, &state).await.status, 400);
    assert_eq!(app.store.count_users().await.unwrap(), 0);
}

#[tokio::test]
async fn the_same_follower_authorizing_twice_at_once_leaves_one_row() {
    let (app, mock) = portal().await;
    mock.set_exchange_delay(Duration::from_millis(100));
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let browser = Browser::new(&app);
            let mock = mock.clone();
            tokio::spawn(async move { authorize(&browser, &mock, "oTwice", "").await.status })
        })
        .collect();
    for run in runs {
        assert_eq!(run.await.unwrap(), 302);
    }
    assert_eq!(app.store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn two_instances_on_one_database_exchange_a_repeated_code_once() {
    let mock = MockWeChat::start().await;
    mock.set_exchange_delay(Duration::from_millis(300));
    let vars = [
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
    ];
    let first = TestApp::spawn(&vars).await;
    let second = TestApp::spawn_in(first.db.clone(), &vars).await;
    let on_first = Browser::new(&first);
    let state = on_first.start_login("").await;
    let code = mock.issue_code("oTwoInstances", "snsapi_userinfo");
    // The same browser's double load, balanced onto both instances.
    let on_second = Browser::new(&second);
    on_second.set_cookie(on_first.cookie());
    let (a, b) = tokio::join!(
        on_first.callback(&code, &state),
        on_second.callback(&code, &state)
    );
    assert_eq!(a.location.as_deref(), Some("/me"), "{a:?}");
    assert_eq!(b.location.as_deref(), Some("/me"), "{b:?}");
    assert_eq!(mock.calls(EXCHANGE), 1);
}
