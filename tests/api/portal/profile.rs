//! The signed-in follower: refresh, logout, delete, sessions across restarts, the cookie's flags.

use super::*;

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
    let db = app.db.clone();
    app.stop().await;
    let app = TestApp::spawn_in(db, &vars).await;
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
