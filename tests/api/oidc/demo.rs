//! The demo's sample app: a whole OpenID Connect round trip on one machine, with WeChat simulated.

use crate::helpers::{Browser, spawn_demo};

/// `location` as a path on the demo.
fn path<'a>(base: &str, location: &'a str) -> &'a str {
    location.strip_prefix(base).unwrap_or(location)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_sample_app_signs_a_follower_in_through_the_provider_and_out_again() {
    let (base, _db, banner) = spawn_demo().await;
    assert!(banner.contains("/_sim/app"));
    let client = wxportal::upstream::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let browser = Browser::at(&base, client);
    assert!(
        browser
            .get("/_sim/app")
            .await
            .body
            .contains("id=\"rp-login\"")
    );
    let authorize = browser.get("/_sim/app/login").await.location.unwrap();
    assert!(
        authorize.starts_with("/oidc/authorize?")
            && authorize.contains("code_challenge_method=S256")
    );
    let login = browser.get(&authorize).await.location.unwrap();
    assert!(
        login.starts_with("/auth/login?scope=snsapi_userinfo"),
        "{login}"
    );
    let wechat = browser.get(&login).await.location.unwrap();
    let url = reqwest::Url::parse(&wechat.replace("#wechat_redirect", "")).unwrap();
    let get = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .unwrap()
            .1
            .into_owned()
    };
    let allowed = browser
        .post_form(
            "/_sim/open/connect/oauth2/authorize",
            &[
                ("follower", "0"),
                ("decision", "allow"),
                ("redirect_uri", &get("redirect_uri")),
                ("state", &get("state")),
                ("scope", &get("scope")),
            ],
        )
        .await;
    let callback = allowed.location.unwrap();
    let resume = browser.get(path(&base, &callback)).await.location.unwrap();
    assert_eq!(resume, "/oidc/resume");
    let consent = browser.get(&resume).await;
    assert!(
        consent.body.contains("示例应用"),
        "the sample app asks for consent"
    );
    assert_eq!(consent.status, 200);
    let back = browser
        .post_form(
            "/oidc/consent",
            &[("csrf", &consent.csrf()), ("decision", "allow")],
        )
        .await
        .location
        .unwrap();
    assert!(
        back.starts_with(&format!("{base}/_sim/app/callback?code=")),
        "{back}"
    );
    let done = browser.get(path(&base, &back)).await;
    assert_eq!(done.location.as_deref(), Some("/_sim/app"), "{}", done.body);
    let home = browser.get("/_sim/app").await;
    assert!(
        home.body.contains("id=\"rp-name\">小明</h2>"),
        "{}",
        home.body
    );
    assert!(
        home.body.contains("nonce&#34;") && home.body.contains("wechat_unionid&#34;"),
        "{}",
        home.body
    );

    let logout = browser.get("/_sim/app/logout").await.location.unwrap();
    assert!(logout.starts_with("/oidc/logout?id_token_hint="));
    let after = browser.get(&logout).await.location.unwrap();
    assert_eq!(after, format!("{base}/_sim/app"));
    assert_ne!(
        browser.get("/me").await.status,
        200,
        "signed out of the portal too"
    );
}
