//! Bad input at every endpoint: the spec's answer, and nothing stored wrongly.

use serde_json::Value;

use super::*;
use crate::helpers::Browser;

/// RFC 7636 Appendix B's verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn authorize_url(client_id: &str, extra: &str) -> String {
    format!(
        "{PUBLIC_URL}/oidc/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid&state=st4te&nonce=n0nce{extra}",
        urlencoding::encode(REDIRECT)
    )
}

/// A code for `openid`, asked with PKCE.
async fn code(s: &Setup, browser: &Browser, openid: &str) -> String {
    let url = authorize_url(
        &s.registered.client_id,
        &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
    );
    let back = follow(browser, &s.mock, openid, &url).await.unwrap();
    param(&back, "code").unwrap()
}

/// Posts to the token endpoint with HTTP Basic as `registered`; status and JSON.
async fn token(
    s: &Setup,
    registered: &Registered,
    secret: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let mut request = s.app.client.post(s.app.url("/oidc/token")).form(form);
    if let Some(secret) = secret.or(registered.client_secret.as_deref()) {
        request = request.basic_auth(&registered.client_id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.unwrap(), challenge)
}

fn exchange<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ]
}

async fn userinfo_status(s: &Setup, access_token: &str) -> u16 {
    s.app
        .client
        .get(s.app.url("/oidc/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_unknown_client_or_unregistered_redirect_uri_is_a_page_never_a_redirect() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    for url in [
        authorize_url("wxc_nobody", ""),
        authorize_url(&s.registered.client_id, "").replace(
            &urlencoding::encode(REDIRECT).into_owned(),
            &urlencoding::encode("https://evil.example/cb"),
        ),
        authorize_url(&s.registered.client_id, "").replace(
            &urlencoding::encode(REDIRECT).into_owned(),
            &urlencoding::encode(&format!("{REDIRECT}/")),
        ),
        format!(
            "{PUBLIC_URL}/oidc/authorize?client_id={}",
            s.registered.client_id
        ),
        // A parameter sent twice: which redirect_uri or state is meant cannot be told.
        authorize_url(&s.registered.client_id, "&state=twice"),
    ] {
        let page = browser.get(&local(&url)).await;
        assert_eq!(
            (page.status, page.location.as_deref()),
            (400, None),
            "{url}"
        );
        assert!(page.body.contains("weui"), "a drawn page");
    }
    assert!(browser.cookie().is_none(), "nothing remembered");
}

#[tokio::test]
async fn requests_the_spec_refuses_go_back_to_the_app_with_its_error() {
    let s = setup(false, false).await;
    let public = register(&s.app, true, false).await;
    let browser = Browser::new(&s.app);
    let id = s.registered.client_id.as_str();
    for (url, error) in [
        (
            authorize_url(id, "").replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_url(id, "").replace("scope=openid", "scope=profile"),
            "invalid_scope",
        ),
        (
            authorize_url(
                id,
                &format!("&code_challenge={CHALLENGE}&code_challenge_method=plain"),
            ),
            "invalid_request",
        ),
        (
            authorize_url(id, &format!("&code_challenge={CHALLENGE}")),
            "invalid_request",
        ),
        (authorize_url(&public.client_id, ""), "invalid_request"),
        (authorize_url(id, "&prompt=none"), "login_required"),
        (authorize_url(id, "&prompt=none%20login"), "invalid_request"),
        (authorize_url(id, "&max_age=soon"), "invalid_request"),
        (authorize_url(id, "&request=eyJ"), "request_not_supported"),
    ] {
        let page = browser.get(&local(&url)).await;
        let location = page
            .location
            .unwrap_or_else(|| panic!("{url}: {}", page.body));
        let back = reqwest::Url::parse(&location).unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(param(&back, "error").as_deref(), Some(error), "{url}");
        assert_eq!(param(&back, "iss").as_deref(), Some(PUBLIC_URL));
        assert!(param(&back, "code").is_none());
    }
    assert_eq!(count(&s.app, "oidc_codes").await, 0);
    assert_eq!(
        count(&s.app, "sessions").await,
        0,
        "anonymous requests wrote nothing"
    );
}

#[tokio::test]
async fn an_anonymous_authorization_writes_nothing_until_wechat_vouches() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let page = browser
        .get(&local(&authorize_url(
            &s.registered.client_id,
            "&prompt=login",
        )))
        .await;
    assert!(
        page.location
            .unwrap()
            .starts_with("/auth/login?scope=snsapi_base")
    );
    for table in ["sessions", "oidc_codes", "oauth_states", "users"] {
        assert_eq!(count(&s.app, table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn a_tampered_wechat_state_mid_sign_in_issues_nothing() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let page = browser
        .get(&local(&authorize_url(&s.registered.client_id, "")))
        .await;
    let login = page.location.unwrap();
    let state = browser.start_login(&login["/auth/login".len()..]).await;
    let mut tampered = state.into_bytes();
    tampered[20] = if tampered[20] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    let answer = browser
        .callback(&s.mock.issue_code("oTamper", "snsapi_base"), &tampered)
        .await;
    assert_eq!(answer.status, 400);
    let resume = browser.get("/oidc/resume").await;
    let back = reqwest::Url::parse(&resume.location.unwrap()).unwrap();
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert!(param(&back, "code").is_none(), "no code without a sign-in");
    assert_eq!(count(&s.app, "oidc_codes").await, 0);
}

#[tokio::test]
async fn a_follower_refusing_wechat_sends_access_denied_back_to_the_app() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let page = browser
        .get(&local(&authorize_url(&s.registered.client_id, "")))
        .await;
    let login = page.location.unwrap();
    let state = browser
        .start_login(login.strip_prefix("/auth/login").unwrap())
        .await;
    // WeChat's "refuse": the callback with a state and no code.
    let refused = browser.callback("", &state).await;
    assert_eq!(refused.location.as_deref(), Some("/oidc/resume"));
    let back = browser.get("/oidc/resume").await.location.unwrap();
    let back = reqwest::Url::parse(&back).unwrap();
    assert!(back.as_str().starts_with(REDIRECT));
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&back, "state").as_deref(), Some("st4te"));
    assert_eq!(count(&s.app, "oidc_codes").await, 0);
}

#[tokio::test]
async fn pkce_must_answer_the_challenge() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let code = code(&s, &browser, "oPkce").await;
    let wrong = "A".repeat(43);
    let (status, body, _) = token(&s, &s.registered, None, &exchange(&code, &wrong)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let missing = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let (status, body, _) = token(&s, &s.registered, None, &missing).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let other_uri = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1/other"),
        ("code_verifier", VERIFIER),
    ];
    let (_, body, _) = token(&s, &s.registered, None, &other_uri).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(count(&s.app, "oidc_grants").await, 0, "nothing issued");
    // The code still works for its rightful owner with the right verifier.
    let (status, body, _) = token(&s, &s.registered, None, &exchange(&code, VERIFIER)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
}

#[tokio::test]
async fn a_code_used_twice_is_refused_and_revokes_what_it_issued() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let code = code(&s, &browser, "oTwice").await;
    let (status, first, _) = token(&s, &s.registered, None, &exchange(&code, VERIFIER)).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&s, access).await, 200);
    let (status, second, _) = token(&s, &s.registered, None, &exchange(&code, VERIFIER)).await;
    assert_eq!(
        (status, second["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo_status(&s, access).await,
        401,
        "the first redemption's tokens are revoked"
    );
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", first["refresh_token"].as_str().unwrap()),
    ];
    let (_, body, _) = token(&s, &s.registered, None, &refresh).await;
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let code = code(&s, &browser, "oLate").await;
    s.app
        .raw_db()
        .await
        .execute("UPDATE oidc_codes SET expires_at = 1")
        .await;
    let (_, body, _) = token(&s, &s.registered, None, &exchange(&code, VERIFIER)).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(count(&s.app, "oidc_grants").await, 0);
}

#[tokio::test]
async fn client_authentication_fails_with_invalid_client() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let code = code(&s, &browser, "oSecret").await;
    let (status, body, challenge) =
        token(&s, &s.registered, Some("wrong"), &exchange(&code, VERIFIER)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(challenge.unwrap().starts_with("Basic"));
    // No authentication at all for a confidential client; both methods at once.
    let mut form = exchange(&code, VERIFIER);
    form.push(("client_id", &s.registered.client_id));
    // The same client sending no Basic header: only what the form says.
    let in_form = Registered {
        client_secret: None,
        ..s.registered.clone()
    };
    let (status, body, _) = token(&s, &in_form, None, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let secret = s.registered.client_secret.clone().unwrap();
    form.push(("client_secret", &secret));
    let (status, body, _) = token(&s, &s.registered, None, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // client_secret_post works.
    let (status, body, _) = token(&s, &in_form, None, &form).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn another_clients_code_or_refresh_token_is_refused_and_left_usable() {
    let s = setup(false, false).await;
    let other = register(&s.app, false, false).await;
    let browser = Browser::new(&s.app);
    let code = code(&s, &browser, "oShared").await;
    let (_, body, _) = token(&s, &other, None, &exchange(&code, VERIFIER)).await;
    assert_eq!(body["error"], "invalid_grant");
    let (status, tokens, _) = token(&s, &s.registered, None, &exchange(&code, VERIFIER)).await;
    assert_eq!(status, 200);
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
    ];
    let (_, body, _) = token(&s, &other, None, &refresh).await;
    assert_eq!(body["error"], "invalid_grant");
    // Revoking it as the other client does nothing either.
    let revoked = s
        .app
        .client
        .post(s.app.url("/oidc/revoke"))
        .basic_auth(&other.client_id, other.client_secret.as_deref())
        .form(&[("token", tokens["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let (status, _, _) = token(&s, &s.registered, None, &refresh).await;
    assert_eq!(status, 200, "the owner's refresh token still works");
}

#[tokio::test]
async fn the_token_endpoint_refuses_malformed_requests() {
    let s = setup(false, false).await;
    for (form, error) in [
        (
            vec![("grant_type", "password"), ("username", "a")],
            "unsupported_grant_type",
        ),
        (vec![("code", "x")], "invalid_request"),
        (
            vec![("grant_type", "authorization_code")],
            "invalid_request",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", "unknown"),
                ("redirect_uri", REDIRECT),
            ],
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "unknown"),
            ],
            "invalid_grant",
        ),
    ] {
        let (status, body, _) = token(&s, &s.registered, None, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{form:?}"
        );
    }
    let twice = s
        .app
        .client
        .post(s.app.url("/oidc/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token&grant_type=authorization_code")
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
}

#[tokio::test]
async fn userinfo_wants_a_live_bearer_token() {
    let s = setup(false, false).await;
    let bare = s
        .app
        .client
        .get(s.app.url("/oidc/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
    assert_eq!(
        bare.headers()["www-authenticate"],
        "Bearer realm=\"wxportal\""
    );
    let junk = s
        .app
        .client
        .get(s.app.url("/oidc/userinfo"))
        .bearer_auth("junk")
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status(), 401);
    assert!(
        junk.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

#[tokio::test]
async fn discovery_names_the_issuer_and_every_endpoint() {
    let s = setup(false, false).await;
    let doc = get_json(&s.app, "/.well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], PUBLIC_URL);
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "end_session_endpoint",
    ] {
        assert!(
            doc[endpoint].as_str().unwrap().starts_with(PUBLIC_URL),
            "{endpoint}"
        );
    }
    let jwks = get_json(&s.app, "/oidc/jwks").await;
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str()),
        (Some("EC"), Some("ES256"))
    );
    assert!(key.get("d").is_none(), "no private part published");
    // A single-page app may call the token endpoint from the browser: the preflight is answered.
    let preflight = s
        .app
        .client
        .request(reqwest::Method::OPTIONS, s.app.url("/oidc/token"))
        .header("origin", "https://spa.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn spent_codes_grants_and_tokens_are_deleted_and_live_ones_kept() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let old = code(&s, &browser, "oTidy").await;
    let (status, _, _) = token(&s, &s.registered, None, &exchange(&old, VERIFIER)).await;
    assert_eq!(status, 200);
    let live = code(&s, &browser, "oTidy").await;
    let (status, kept, _) = token(&s, &s.registered, None, &exchange(&live, VERIFIER)).await;
    assert_eq!(status, 200);
    // The first sign-in's code and grant expired two days ago.
    let mut db = s.app.raw_db().await;
    let old_hash = wxportal::oidc::hash(&old);
    db.execute(&format!(
        "UPDATE oidc_codes SET expires_at = 1 WHERE code_hash = '{old_hash}'"
    ))
    .await;
    db.execute(&format!(
        "UPDATE oidc_grants SET expires_at = 1 WHERE id = (SELECT grant_id FROM oidc_codes WHERE code_hash = '{old_hash}')"
    ))
    .await;
    let deleted = s.app.store.delete_spent_oidc().await.unwrap();
    assert!(deleted >= 2, "{deleted}");
    assert_eq!(
        (
            count(&s.app, "oidc_codes").await,
            count(&s.app, "oidc_grants").await,
            count(&s.app, "oidc_tokens").await
        ),
        (1, 1, 2),
        "the live sign-in keeps its code, grant and two tokens"
    );
    assert_eq!(
        userinfo_status(&s, kept["access_token"].as_str().unwrap()).await,
        200
    );
}

#[tokio::test]
async fn starting_sign_ins_is_limited_per_client() {
    let mock = MockWeChat::start().await;
    let app = TestApp::spawn(&[
        ("WXPORTAL_APPSECRET", crate::mock::APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", &mock.base),
        ("WXPORTAL_LIMIT_AUTH_LOGIN", "2/1m"),
    ])
    .await;
    let registered = register(&app, false, false).await;
    let browser = Browser::new(&app);
    let url = local(&authorize_url(&registered.client_id, ""));
    for _ in 0..2 {
        assert_eq!(browser.get(&url).await.status, 302);
    }
    let refused = browser.get(&url).await;
    assert_eq!(refused.status, 429);
}

#[tokio::test]
async fn a_posted_authorization_request_goes_on_as_the_same_get() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let form = [
        ("response_type", "code"),
        ("client_id", s.registered.client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "posted"),
    ];
    let posted = browser.post_form("/oidc/authorize", &form).await;
    assert_eq!(posted.status, 303);
    let get = posted.location.unwrap();
    assert!(
        get.starts_with("/oidc/authorize?") && get.contains("state=posted"),
        "{get}"
    );
    let back = follow(&browser, &s.mock, "oPoster", &format!("{PUBLIC_URL}{get}"))
        .await
        .unwrap();
    assert_eq!(param(&back, "state").as_deref(), Some("posted"));
    assert!(param(&back, "code").is_some());
}
