//! Web authorization, end to end: the real server, a browser with a cookie jar, a mock WeChat upstream.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{Browser, PUBLIC_URL, TestApp, spawn_demo};
use crate::mock::{APPSECRET, MockWeChat, Scripted};

mod callbacks;
mod profile;
mod upstream;

pub(crate) const EXCHANGE: &str = "/sns/oauth2/access_token";
pub(crate) const USERINFO: &str = "/sns/userinfo";
pub(super) const REFRESH: &str = "/sns/oauth2/refresh_token";

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
pub(crate) async fn authorize(
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
pub(super) async fn login_redirects_to_wechat_with_the_parameters_in_order() {
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
pub(super) async fn userinfo_authorization_stores_the_profile_and_shows_it_escaped() {
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
pub(super) async fn base_authorization_stores_the_openid_without_asking_for_a_profile() {
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

/// A signed-in browser and the CSRF token its profile page carries.
pub(crate) async fn signed_in(app: &TestApp, mock: &MockWeChat, openid: &str) -> (Browser, String) {
    let browser = Browser::new(app);
    authorize(&browser, mock, openid, "").await;
    let csrf = browser.get("/me").await.csrf();
    (browser, csrf)
}

#[tokio::test]
pub(super) async fn the_guide_offers_both_sign_ins_in_wechat_and_a_qr_code_elsewhere() {
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

/// Sign-ins arriving together: each follower is stored and signed in to a session of their own, and their
/// writes (claim, profile, session) are committed in groups. On PostgreSQL a row's `xmin` names the
/// transaction that wrote it: a commit per sign-in would give every session row its own.
#[tokio::test]
pub(super) async fn sign_ins_at_once_each_get_their_session_and_share_commits() {
    const SIGN_INS: usize = 40;
    let mock = MockWeChat::start().await;
    // Every browser here comes from 127.0.0.1: the per-client limits would stop the crowd at once.
    let app = TestApp::spawn(&[
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", &mock.base),
        ("WXPORTAL_WECHAT_OPEN_URL", "http://open.wechat.test"),
        ("WXPORTAL_LIMIT_AUTH_LOGIN", "off"),
        ("WXPORTAL_LIMIT_AUTH_CALLBACK", "off"),
        ("WXPORTAL_LIMIT_CODE_EXCHANGE", "off"),
    ])
    .await;
    // Exchanges that overlap, as a crowd's do.
    mock.set_exchange_delay(Duration::from_millis(20));
    let browsers: Vec<Browser> = (0..SIGN_INS).map(|_| Browser::new(&app)).collect();
    let openid = |i: usize| format!("oTogether{i:019}");
    let openids: Vec<String> = (0..SIGN_INS).map(openid).collect();
    let pages = futures_util::future::join_all(
        browsers
            .iter()
            .zip(&openids)
            .map(|(browser, openid)| authorize(browser, &mock, openid, "?next=/me")),
    )
    .await;
    for page in &pages {
        assert_eq!((page.status, page.location.as_deref()), (302, Some("/me")));
    }
    for (i, browser) in browsers.iter().enumerate() {
        let me = browser.get("/me").await;
        assert_eq!(me.status, 200);
        assert!(
            me.body.contains(&openid(i)),
            "each browser sees its own follower"
        );
    }
    assert_eq!(app.rows("sessions").await, SIGN_INS as i64);
    let mut raw = app.raw_db().await;
    assert_eq!(
        raw.number(
            "SELECT count(*) FROM oauth_states WHERE outcome = 'done' AND openid LIKE 'oTogether%'"
        )
        .await,
        SIGN_INS as i64
    );
    if crate::BACKEND == crate::db::Backend::Postgres {
        let transactions = raw
            .number("SELECT count(DISTINCT xmin::text) FROM sessions")
            .await;
        assert!(
            transactions < SIGN_INS as i64,
            "{transactions} transactions for {SIGN_INS} sessions"
        );
    }
}
