//! The whole round trip as an app's OIDC library sees it.

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    Scope, TokenResponse,
};

use super::*;
use crate::helpers::Browser;
use crate::portal::{EXCHANGE, USERINFO};

/// One sign-in through the library: the authorization URL (PKCE, nonce, `scopes`), the follower's
/// browser, the code exchanged and the ID token verified (signature, issuer, audience, nonce, at_hash).
pub(in crate::oidc) async fn sign_in(
    s: &Setup,
    browser: &Browser,
    openid: &str,
    scopes: &[&str],
    extra: &[(&str, &str)],
) -> (
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreIdTokenClaims,
) {
    let call = |r| s.http.call(r);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request =
        s.rp.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).into()));
    }
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    let (url, state, nonce) = request.url();
    let back = follow(browser, &s.mock, openid, url.as_str())
        .await
        .expect("the follower is sent back to the app");
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    assert_eq!(
        param(&back, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(param(&back, "iss").as_deref(), Some(PUBLIC_URL));
    let code = param(&back, "code").expect("a code");
    let tokens =
        s.rp.exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&call)
            .await
            .expect("the code is exchanged");
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = s.rp.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the ID token verifies")
        .clone();
    let expected = claims.access_token_hash().expect("at_hash");
    let actual = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual, expected, "at_hash matches the access token");
    (tokens, claims)
}

#[tokio::test]
async fn an_app_signs_a_follower_in_and_reads_the_profile_through_its_oidc_library() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let (tokens, claims) = sign_in(&s, &browser, "oShopper", &["profile"], &[]).await;
    let sub = claims.subject().as_str().to_owned();
    assert_ne!(sub, "oShopper", "a pairwise subject, not the OpenID");
    assert!(claims.auth_time().is_some());
    assert_eq!(tokens.scopes().unwrap().len(), 2);
    assert_eq!(
        (s.mock.calls(EXCHANGE), s.mock.calls(USERINFO)),
        (1, 1),
        "profile asks for snsapi_userinfo"
    );

    let info = userinfo(&s, tokens.access_token())
        .await
        .expect("userinfo answers");
    assert_eq!(info.subject().as_str(), sub);
    let name = info
        .name()
        .and_then(|n| n.get(None))
        .unwrap()
        .as_str()
        .to_owned();
    assert!(name.contains("小明🐼 oShopper"), "{name}");
    assert!(info.picture().is_some());
    assert_eq!(
        info.additional_claims().wechat_unionid.as_deref(),
        Some("uUnion1")
    );

    // Signed in to the portal: the next sign-in, even to another app, makes no WeChat call.
    let other = register(&s.app, false, false).await;
    let other_rp = relying_party(&s.http, &other).await;
    let again = Setup {
        rp: other_rp,
        registered: other,
        app: s.app,
        mock: s.mock,
        http: s.http,
    };
    let (_, second) = sign_in(&again, &browser, "oShopper", &["profile"], &[]).await;
    assert_eq!(again.mock.calls(EXCHANGE), 1, "no second WeChat round trip");
    assert_ne!(
        second.subject().as_str(),
        sub,
        "each app sees its own subject"
    );
}

#[tokio::test]
async fn without_profile_the_portal_signs_in_silently_and_gives_only_the_subject() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let (tokens, _) = sign_in(&s, &browser, "oQuietShopper", &[], &[]).await;
    assert_eq!(
        (s.mock.calls(EXCHANGE), s.mock.calls(USERINFO)),
        (1, 0),
        "snsapi_base only"
    );
    let info = userinfo(&s, tokens.access_token()).await.unwrap();
    assert!(info.name().is_none() && info.picture().is_none());

    // Asking for the profile later takes one snsapi_userinfo round trip.
    sign_in(&s, &browser, "oQuietShopper", &["profile"], &[]).await;
    assert_eq!((s.mock.calls(EXCHANGE), s.mock.calls(USERINFO)), (2, 1));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replayed_one_revokes_the_sign_in() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let (tokens, claims) = sign_in(&s, &browser, "oRefresher", &["profile"], &[]).await;
    let call = |r| s.http.call(r);
    let first = tokens.refresh_token().unwrap().clone();
    let renewed =
        s.rp.exchange_refresh_token(&first)
            .unwrap()
            .request_async(&call)
            .await
            .expect("the refresh token is exchanged");
    let second = renewed.refresh_token().unwrap().clone();
    assert_ne!(first.secret(), second.secret(), "the refresh token rotates");
    let renewed_claims = renewed
        .id_token()
        .unwrap()
        .claims(&s.rp.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .unwrap();
    assert_eq!(renewed_claims.subject(), claims.subject());
    let info = userinfo(&s, renewed.access_token()).await;
    assert!(info.is_ok());

    // The first token again: a replay. Everything of this sign-in stops working.
    let replay =
        s.rp.exchange_refresh_token(&first)
            .unwrap()
            .request_async(&call)
            .await;
    assert!(format!("{:?}", replay.unwrap_err()).contains("invalid_grant"));
    let after =
        s.rp.exchange_refresh_token(&second)
            .unwrap()
            .request_async(&call)
            .await;
    assert!(after.is_err(), "the newer refresh token is revoked too");
    let info = userinfo(&s, renewed.access_token()).await;
    assert!(info.is_err(), "and so is its access token");
}

#[tokio::test]
async fn revoking_the_refresh_token_ends_the_sign_in_for_that_app() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let (tokens, _) = sign_in(&s, &browser, "oRevoker", &[], &[]).await;
    let call = |r| s.http.call(r);
    // The library refuses to revoke over plain http, so the app's call is made by hand (RFC 7009 §2.1).
    let revoked = s
        .app
        .client
        .post(s.app.url("/oidc/revoke"))
        .basic_auth(
            &s.registered.client_id,
            s.registered.client_secret.as_deref(),
        )
        .form(&[
            ("token", tokens.refresh_token().unwrap().secret().as_str()),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let info = userinfo(&s, tokens.access_token()).await;
    assert!(info.is_err());
    let refresh =
        s.rp.exchange_refresh_token(tokens.refresh_token().unwrap())
            .unwrap()
            .request_async(&call)
            .await;
    assert!(refresh.is_err());
}

#[tokio::test]
async fn a_public_client_signs_in_with_pkce_and_no_secret() {
    let s = setup(true, false).await;
    assert!(s.registered.client_secret.is_none());
    let browser = Browser::new(&s.app);
    let (tokens, _) = sign_in(&s, &browser, "oMobile", &[], &[]).await;
    assert!(tokens.refresh_token().is_some());
}

#[tokio::test]
async fn a_consent_client_asks_once_and_remembers() {
    let s = setup(false, true).await;
    let browser = Browser::new(&s.app);
    let (url, _, _) =
        s.rp.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .url();
    let page = follow(&browser, &s.mock, "oCareful", url.as_str())
        .await
        .unwrap_err();
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("积分商城 &#60;Shop&#62;")
            || page.body.contains("积分商城 &lt;Shop&gt;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"consent-profile\""));
    assert_eq!(
        count(&s.app, "oidc_codes").await,
        0,
        "nothing issued before the answer"
    );
    let csrf = page.csrf();
    let answer = browser
        .post_form("/oidc/consent", &[("csrf", &csrf), ("decision", "allow")])
        .await;
    let back = reqwest::Url::parse(answer.location.as_deref().unwrap()).unwrap();
    assert!(param(&back, "code").is_some(), "{back}");
    assert_eq!(count(&s.app, "oidc_consents").await, 1);

    // Remembered: the next sign-in goes straight back.
    sign_in(&s, &browser, "oCareful", &["profile"], &[]).await;
    // prompt=consent asks again; "deny" goes back with access_denied.
    let (url, state, _) =
        s.rp.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_prompt(openidconnect::core::CoreAuthPrompt::Consent)
        .url();
    let page = follow(&browser, &s.mock, "oCareful", url.as_str())
        .await
        .unwrap_err();
    let denied = browser
        .post_form(
            "/oidc/consent",
            &[("csrf", &page.csrf()), ("decision", "deny")],
        )
        .await;
    let back = reqwest::Url::parse(denied.location.as_deref().unwrap()).unwrap();
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        param(&back, "state").as_deref(),
        Some(state.secret().as_str())
    );
}

#[tokio::test]
async fn prompt_login_and_max_age_send_the_follower_through_wechat_again() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    sign_in(&s, &browser, "oAgain", &[], &[]).await;
    sign_in(&s, &browser, "oAgain", &[], &[]).await;
    assert_eq!(s.mock.calls(EXCHANGE), 1);
    sign_in(&s, &browser, "oAgain", &[], &[("prompt", "login")]).await;
    assert_eq!(s.mock.calls(EXCHANGE), 2, "prompt=login signs in afresh");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (_, claims) = sign_in(&s, &browser, "oAgain", &[], &[("max_age", "0")]).await;
    assert_eq!(s.mock.calls(EXCHANGE), 3, "max_age=0 signs in afresh");
    let auth_time = claims.auth_time().unwrap().timestamp();
    assert!((wxportal::time::unix_now() - auth_time).abs() <= 2);
}

#[tokio::test]
async fn logout_with_the_id_token_ends_the_portal_session_and_returns_to_the_app() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let (tokens, _) = sign_in(&s, &browser, "oLeaving", &[], &[]).await;
    let hint = tokens.id_token().unwrap().to_string();
    let page = browser
        .get(&format!(
            "/oidc/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye",
            urlencoding::encode(LOGOUT_REDIRECT)
        ))
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some(format!("{LOGOUT_REDIRECT}?state=bye").as_str())
    );
    let me = browser.get("/me").await;
    assert_ne!(me.status, 200, "the portal session has ended");
    // Signing in again takes WeChat again.
    sign_in(&s, &browser, "oLeaving", &[], &[]).await;
    assert_eq!(s.mock.calls(EXCHANGE), 2);

    // Without a hint, or with another follower's, the follower confirms first; an unregistered place
    // to go is never followed.
    let page = browser.get("/oidc/logout").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"logout-confirm\""));
    let someone_else = Browser::new(&s.app);
    let (theirs, _) = sign_in(&s, &someone_else, "oSomeoneElse", &[], &[]).await;
    let page = browser
        .get(&format!(
            "/oidc/logout?id_token_hint={}",
            theirs.id_token().unwrap()
        ))
        .await;
    assert!(page.body.contains("id=\"logout-confirm\""), "{page:?}");
    let confirmed = browser
        .post_form(
            "/oidc/logout",
            &[
                ("csrf", &page.csrf()),
                ("post_logout_redirect_uri", LOGOUT_REDIRECT),
                ("id_token_hint", &theirs.id_token().unwrap().to_string()),
            ],
        )
        .await;
    assert_eq!(confirmed.location.as_deref(), Some(LOGOUT_REDIRECT));
    assert_ne!(browser.get("/me").await.status, 200);
    let bad = browser
        .get(&format!(
            "/oidc/logout?id_token_hint={hint}&post_logout_redirect_uri={}",
            urlencoding::encode("https://evil.example/")
        ))
        .await;
    assert_eq!((bad.status, bad.location), (400, None));
}

#[tokio::test]
async fn a_rotated_key_signs_new_tokens_and_the_old_one_stays_published() {
    let s = setup(false, false).await;
    let browser = Browser::new(&s.app);
    let (before, _) = sign_in(&s, &browser, "oRotation", &[], &[]).await;
    let old_kid = kid(&before.id_token().unwrap().to_string());
    let new = wxportal::oidc::keys::rotate(&s.app.store).await.unwrap();
    let jwks = get_json(&s.app, "/oidc/jwks").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new.kid.as_str()),
        "{kids:?}"
    );
    // A server picks the new key up within 30 s; this one restarts to show it at once.
    let db = std::sync::Arc::clone(&s.app.db);
    let vars = [
        ("WXPORTAL_APPSECRET", crate::mock::APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", s.mock.base.as_str()),
        ("WXPORTAL_WECHAT_OPEN_URL", "http://open.wechat.test"),
    ];
    let cookie = browser.cookie();
    s.app.stop().await;
    let app = TestApp::spawn_in(db, &vars).await;
    let http = Http::new(&app);
    let rp = relying_party(&http, &s.registered).await;
    let browser = Browser::new(&app);
    browser.set_cookie(cookie);
    let restarted = Setup {
        app,
        mock: s.mock,
        http,
        registered: s.registered,
        rp,
    };
    let (after, _) = sign_in(&restarted, &browser, "oRotation", &[], &[]).await;
    assert_eq!(kid(&after.id_token().unwrap().to_string()), new.kid);
}

fn kid(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// The app reads userinfo with an access token.
async fn userinfo(
    s: &Setup,
    access_token: &openidconnect::AccessToken,
) -> Result<Userinfo, String> {
    let call = |r| s.http.call(r);
    s.rp.user_info(access_token.clone(), None)
        .unwrap()
        .request_async(&call)
        .await
        .map_err(|e| format!("{e:?}"))
}
