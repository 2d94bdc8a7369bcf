//! Anonymous traffic: cookie-less visits write nothing; per-client limits answer 429 and recover; junk cannot spend the account's quotas.

use super::*;

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
