//! Web authorization, end to end: the real server, a browser with a cookie jar, a mock WeChat upstream.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{Browser, PUBLIC_URL, TestApp, spawn_demo};
use crate::mock::{APPSECRET, MockWeChat, Scripted};

const EXCHANGE: &str = "/sns/oauth2/access_token";
const USERINFO: &str = "/sns/userinfo";
const REFRESH: &str = "/sns/oauth2/refresh_token";

pub(crate) async fn portal() -> (TestApp, MockWeChat) {
    let mock = MockWeChat::start().await;
    let app = TestApp::spawn(&[
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", &mock.base),
        ("WXPORTAL_WECHAT_OPEN_URL", "http://open.wechat.test"),
    ])
    .await;
    (app, mock)
}

/// Login → consent (the mock's code) → callback: the callback's answer.
async fn authorize(
    browser: &Browser,
    mock: &MockWeChat,
    openid: &str,
    query: &str,
) -> crate::helpers::Page {
    let state = browser.start_login(query).await;
    let scope = if query.contains("snsapi_base") {
        "snsapi_base"
    } else {
        "snsapi_userinfo"
    };
    let code = mock.issue_code(openid, scope);
    browser.callback(&code, &state).await
}

#[tokio::test]
async fn login_redirects_to_wechat_with_the_parameters_in_order() {
    let (app, _mock) = portal().await;
    let browser = Browser::new(&app);
    let page = browser.get("/auth/login?scope=snsapi_base&next=/me").await;
    assert_eq!(page.status, 302);
    let location = page.location.unwrap();
    let expected_start = format!(
        "http://open.wechat.test/connect/oauth2/authorize?appid=wx1234567890abcdef&redirect_uri={}&response_type=code&scope=snsapi_base&state=",
        urlencoding::encode(&format!("{PUBLIC_URL}/auth/callback"))
    );
    assert!(location.starts_with(&expected_start), "{location}");
    assert!(location.ends_with("#wechat_redirect"), "{location}");
    let state = &location[expected_start.len()..location.len() - "#wechat_redirect".len()];
    assert!(state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(
        browser.cookie_named("wxportal_oauth").is_some(),
        "the browser remembers the state it started"
    );
    assert!(browser.cookie_named("wxportal_session").is_none());
}

#[tokio::test]
async fn userinfo_authorization_stores_the_profile_and_shows_it_escaped() {
    let (app, mock) = portal().await;
    let browser = Browser::new(&app);
    let page = authorize(&browser, &mock, "oFollower1", "?next=/me").await;
    assert_eq!((page.status, page.location.as_deref()), (302, Some("/me")));
    let user = app.store.user("oFollower1").await.unwrap().unwrap();
    assert_eq!(user.scope.as_deref(), Some("snsapi_userinfo"));
    assert!(user.nickname.as_deref().unwrap().contains("小明🐼"));
    assert_eq!(user.city.as_deref(), Some("深圳"));
    assert_eq!(user.unionid.as_deref(), Some("uUnion1"));
    assert!(user.access_token.is_some() && user.refresh_token.is_some());
    assert!(user.first_authorized_at.is_some());
    assert!(!user.subscribed, "authorizing is not following");

    let me = browser.get("/me").await;
    assert_eq!(me.status, 200);
    assert!(
        me.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;小明🐼")
            || me
                .body
                .contains("&lt;script&gt;alert(1)&lt;/script&gt;小明🐼"),
        "{}",
        me.body
    );
    assert!(!me.body.contains("<script>"));
    assert!(
        me.body.contains("深圳") && me.body.contains("chinaunicom") && me.body.contains("uUnion1")
    );
    assert_eq!((mock.calls(EXCHANGE), mock.calls(USERINFO)), (1, 1));
}

#[tokio::test]
async fn base_authorization_stores_the_openid_without_asking_for_a_profile() {
    let (app, mock) = portal().await;
    let browser = Browser::new(&app);
    let page = authorize(&browser, &mock, "oQuiet", "?scope=snsapi_base").await;
    assert_eq!(page.location.as_deref(), Some("/me"));
    assert_eq!(mock.calls(USERINFO), 0);
    let user = app.store.user("oQuiet").await.unwrap().unwrap();
    assert_eq!(
        (user.scope.as_deref(), user.nickname),
        (Some("snsapi_base"), None)
    );
    let me = browser.get("/me").await;
    assert!(me.body.contains("oQuiet") && me.body.contains("id=\"upgrade\""));
}

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
async fn each_upstream_failure_is_a_page_with_the_right_status_and_nothing_stored() {
    let (app, mock) = portal().await;
    let cases: [(&str, Scripted, u16, &str); 9] = [
        (EXCHANGE, Scripted::Errcode(40029), 400, "授权已失效"),
        (EXCHANGE, Scripted::Errcode(40163), 400, "授权已失效"),
        (EXCHANGE, Scripted::Errcode(40125), 502, "AppSecret"),
        (EXCHANGE, Scripted::Errcode(40164), 502, "白名单"),
        (EXCHANGE, Scripted::Errcode(45009), 503, "明天"),
        (EXCHANGE, Scripted::Status(500), 502, "微信服务异常"),
        (EXCHANGE, Scripted::Garbage, 502, "微信服务异常"),
        (USERINFO, Scripted::Errcode(50001), 403, "未获得授权"),
        (USERINFO, Scripted::Status(503), 502, "微信服务异常"),
    ];
    for (path, answer, status, words) in cases {
        mock.script(path, answer.clone());
        let browser = Browser::new(&app);
        let page = authorize(&browser, &mock, "oFailing", "").await;
        assert_eq!(page.status, status, "{path} {answer:?}");
        assert!(page.body.contains(words), "{answer:?}: {}", page.body);
        assert!(page.body.contains("id=\"retry\""), "a retry button");
        assert!(page.body.contains("weui-msg__desc en"), "English beneath");
        assert_eq!(
            browser.get("/me").await.status,
            302,
            "not signed in after {answer:?}"
        );
    }
    assert_eq!(
        app.store.count_users().await.unwrap(),
        0,
        "nothing half-stored"
    );
}

#[tokio::test]
async fn system_busy_is_retried_with_backoff() {
    let (app, mock) = portal().await;
    mock.script(EXCHANGE, Scripted::Errcode(-1));
    let browser = Browser::new(&app);
    let page = authorize(&browser, &mock, "oBusy", "").await;
    assert_eq!(page.location.as_deref(), Some("/me"));
    assert_eq!(mock.calls(EXCHANGE), 2);

    for _ in 0..3 {
        mock.script(EXCHANGE, Scripted::Errcode(-1));
    }
    let page = authorize(&Browser::new(&app), &mock, "oBusy2", "").await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains("繁忙"));
}

#[tokio::test]
async fn a_wechat_that_does_not_answer_in_time_is_a_504_page() {
    let (app, mock) = portal().await;
    mock.script(EXCHANGE, Scripted::Delay(Duration::from_secs(6)));
    let page = authorize(&Browser::new(&app), &mock, "oSlow", "").await;
    assert_eq!(page.status, 504);
    assert!(page.body.contains("超时"));
}

#[tokio::test]
async fn a_snapshot_user_is_asked_to_open_the_full_page_and_not_stored() {
    let (app, mock) = portal().await;
    let browser = Browser::new(&app);
    let state = browser.start_login("?scope=snsapi_base").await;
    let page = browser.callback(&mock.issue_snapshot_code(), &state).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("请打开完整页面"));
    assert_eq!(app.store.count_users().await.unwrap(), 0);
    assert_eq!(browser.get("/me").await.status, 302);
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

/// A signed-in browser and the CSRF token its profile page carries.
pub(crate) async fn signed_in(app: &TestApp, mock: &MockWeChat, openid: &str) -> (Browser, String) {
    let browser = Browser::new(app);
    authorize(&browser, mock, openid, "").await;
    let csrf = browser.get("/me").await.csrf();
    (browser, csrf)
}

#[tokio::test]
async fn refresh_renews_an_expired_token_and_fetches_the_profile_again() {
    let (app, mock) = portal().await;
    let (browser, csrf) = signed_in(&app, &mock, "oRefresh").await;
    let before = app.store.user("oRefresh").await.unwrap().unwrap();
    mock.expire_access_tokens();
    let page = browser.post_form("/me/refresh", &[("csrf", &csrf)]).await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/me")),
        "{page:?}"
    );
    assert_eq!(mock.calls(REFRESH), 1);
    assert_eq!(
        mock.calls(USERINFO),
        3,
        "first, then 42001, then with the renewed token"
    );
    let after = app.store.user("oRefresh").await.unwrap().unwrap();
    assert_ne!(before.access_token, after.access_token);
}

#[tokio::test]
async fn a_dead_refresh_token_sends_the_follower_back_through_authorization() {
    let (app, mock) = portal().await;
    let (browser, csrf) = signed_in(&app, &mock, "oDead").await;
    mock.expire_access_tokens();
    mock.kill_refresh_tokens();
    let page = browser.post_form("/me/refresh", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 302);
    assert!(
        page.location
            .unwrap()
            .starts_with("/auth/login?scope=snsapi_userinfo")
    );
}

#[tokio::test]
async fn logout_needs_the_form_token_and_ends_the_session() {
    let (app, mock) = portal().await;
    let (browser, csrf) = signed_in(&app, &mock, "oLogout").await;
    assert_eq!(browser.post_form("/auth/logout", &[]).await.status, 403);
    assert_eq!(browser.get("/me").await.status, 200);
    let page = browser.post_form("/auth/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 303);
    assert_eq!(browser.get("/me").await.status, 302);
}

#[tokio::test]
async fn delete_erases_the_profile_and_tokens_after_confirmation() {
    let (app, mock) = portal().await;
    let (browser, csrf) = signed_in(&app, &mock, "oForget").await;
    let confirm = browser.get("/me/delete").await;
    assert!(confirm.body.contains("confirm-delete"));
    assert_eq!(
        browser
            .post_form("/me/delete", &[("csrf", "wrong")])
            .await
            .status,
        403
    );
    let page = browser.post_form("/me/delete", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("资料已删除"));
    let user = app.store.user("oForget").await.unwrap().unwrap();
    assert_eq!(
        (
            user.nickname,
            user.access_token,
            user.refresh_token,
            user.userinfo_json
        ),
        (None, None, None, None)
    );
    assert_eq!(browser.get("/me").await.status, 302);
}

#[tokio::test]
async fn me_without_a_session_goes_to_login_and_comes_back() {
    let (app, _mock) = portal().await;
    let page = Browser::new(&app).get("/me").await;
    assert_eq!(page.status, 302);
    assert_eq!(
        page.location.as_deref(),
        Some("/auth/login?scope=snsapi_userinfo&next=%2Fme")
    );
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let mock = MockWeChat::start().await;
    let vars = [
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
    ];
    let app = TestApp::spawn(&vars).await;
    let browser = Browser::new(&app);
    authorize(&browser, &mock, "oStays", "").await;
    let cookie = browser.cookie().unwrap();
    let dir = app.dir.clone();
    app.stop().await;
    let app = TestApp::spawn_in(dir, &vars).await;
    let response = app
        .client
        .get(app.url("/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_guide_offers_both_sign_ins_in_wechat_and_a_qr_code_elsewhere() {
    let (app, _mock) = portal().await;
    let in_wechat = Browser::new(&app).get("/").await;
    assert!(in_wechat.body.contains("/auth/login?scope=snsapi_userinfo"));
    assert!(in_wechat.body.contains("/auth/login?scope=snsapi_base"));
    assert!(!in_wechat.body.contains("qr.svg"));

    let desktop = app.client.get(app.url("/")).send().await.unwrap();
    let csp = desktop.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"));
    let body = desktop.text().await.unwrap();
    assert!(body.contains("请在微信中打开") && body.contains("/qr.svg"));
    assert!(
        !body.contains("/auth/login"),
        "no sign-in outside WeChat (outside the demo)"
    );
    let qr = app.client.get(app.url("/qr.svg")).send().await.unwrap();
    assert_eq!(qr.headers()["content-type"], "image/svg+xml");
    assert!(qr.text().await.unwrap().contains("<svg"));
    let css = app
        .client
        .get(app.url("/static/weui-2.6.26.min.css"))
        .send()
        .await
        .unwrap();
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
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
    let second = TestApp::spawn_in(first.dir.clone(), &vars).await;
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

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_secure_under_https() {
    let mock = MockWeChat::start().await;
    for (public_url, secure) in [("https://portal.test", true), ("http://portal.test", false)] {
        let app = TestApp::spawn(&[
            ("WXPORTAL_PUBLIC_URL", public_url),
            ("WXPORTAL_APPSECRET", APPSECRET),
            ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
        ])
        .await;
        let browser = Browser::new(&app);
        let state = browser.start_login("").await;
        let code = mock.issue_code("oCookie", "snsapi_userinfo");
        let response = app
            .client
            .get(app.url(&format!("/auth/callback?code={code}&state={state}")))
            .header("cookie", browser.cookie().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
        let cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|c| c.to_str().unwrap().to_owned())
            .collect();
        assert!(
            cookies.iter().any(|c| c.starts_with("wxportal_session=")),
            "{cookies:?}"
        );
        for cookie in cookies {
            assert!(
                cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
                "{cookie}"
            );
            assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
        }
    }
}

#[tokio::test]
async fn the_simulator_is_not_reachable_under_serve() {
    let (app, _mock) = portal().await;
    for path in [
        "/_sim/chat",
        "/_sim/open/connect/oauth2/authorize",
        "/_sim/api/sns/userinfo",
    ] {
        let status = app.client.get(app.url(path)).send().await.unwrap().status();
        assert_eq!(status, 404, "{path}");
    }
}

#[tokio::test]
async fn the_simulator_speaks_wechats_errors() {
    let (base, _dir, _) = spawn_demo().await;
    let client = wxportal::upstream::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let errcode = |body: String| -> i64 {
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["errcode"]
            .as_i64()
            .unwrap_or(0)
    };
    let sns = |path: &str| format!("{base}/_sim/api/sns/{path}");
    let bad_appid = client
        .get(sns("oauth2/access_token?appid=wx0000000000000000&secret=x&code=c&grant_type=authorization_code"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_appid.headers()["content-type"], "text/plain");
    assert_eq!(errcode(bad_appid.text().await.unwrap()), 40013);

    // Consent as follower 0 with the quiet scope, then exchange the code twice.
    let callback = format!("{base}/auth/callback");
    let allowed = crate::helpers::simulator_allows(&client, &base, &callback).await;
    let location = allowed.headers()["location"].to_str().unwrap().to_owned();
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let exchange = sns(&format!(
        "oauth2/access_token?appid=wx0123456789abcdef&secret=d3e0d3e0d3e0d3e0d3e0d3e0d3e0d3e0&code={code}&grant_type=authorization_code"
    ));
    let grant: serde_json::Value = serde_json::from_str(
        &client
            .get(&exchange)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let again = client
        .get(&exchange)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(errcode(again), 40163, "a code works once");
    let (token, openid) = (
        grant["access_token"].as_str().unwrap(),
        grant["openid"].as_str().unwrap(),
    );
    let userinfo = client
        .get(sns(&format!(
            "userinfo?access_token={token}&openid={openid}&lang=zh_CN"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        errcode(userinfo.text().await.unwrap()),
        48001,
        "a base token reads no profile"
    );
    let unknown = client.get(sns("oauth2/refresh_token?appid=wx0123456789abcdef&grant_type=refresh_token&refresh_token=nope")).send().await.unwrap();
    assert_eq!(errcode(unknown.text().await.unwrap()), 40030);
    let foreign = client
        .get(format!(
            "{base}/_sim/open/connect/oauth2/authorize?appid=wx0123456789abcdef&redirect_uri={}&response_type=code&scope=snsapi_base&state=s",
            urlencoding::encode("https://evil.example/cb")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 400);
    assert!(foreign.text().await.unwrap().contains("10003"));
}
