//! WeChat failing: every failure a page with the right status, busy retried, timeouts, snapshot visitors; the simulator speaks its errors.

use super::*;

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
