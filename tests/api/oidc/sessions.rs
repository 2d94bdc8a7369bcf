//! Several instances on one database behave as one provider: codes, grants and keys are shared.

use std::sync::Arc;

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, TokenResponse,
};

use super::*;
use crate::helpers::Browser;
use crate::mock::APPSECRET;

#[tokio::test]
async fn authorize_on_one_instance_redeem_on_another_refresh_on_a_third() {
    let (first, mock) = provider().await;
    let vars = [
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
        ("WXPORTAL_WECHAT_OPEN_URL", "http://open.wechat.test"),
    ];
    let second = TestApp::spawn_in(Arc::clone(&first.db), &vars).await;
    let third = TestApp::spawn_in(Arc::clone(&first.db), &vars).await;
    let registered = register(&first, false, false).await;
    let (http1, http2, http3) = (Http::new(&first), Http::new(&second), Http::new(&third));
    let rp = relying_party(&http1, &registered).await;

    let browser = Browser::new(&first);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let back = follow(&browser, &mock, "oEverywhere", url.as_str())
        .await
        .unwrap();
    let code = param(&back, "code").unwrap();

    let call2 = |r| http2.call(r);
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&call2)
        .await
        .expect("another instance redeems the code");
    // The ID token verifies against the JWKS any instance serves: every instance signs with the same keys.
    let rp3 = relying_party(&http3, &registered).await;
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&rp3.id_token_verifier(), &nonce)
        .unwrap();
    assert!(!claims.subject().as_str().is_empty());

    // The code is spent everywhere.
    let again = s_form(&code);
    let reuse = first
        .client
        .post(first.url("/oidc/token"))
        .basic_auth(&registered.client_id, registered.client_secret.as_deref())
        .form(&again)
        .send()
        .await
        .unwrap();
    assert_eq!(reuse.status(), 400);

    // That reuse revoked the grant; a fresh sign-in refreshes on the third instance.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, _) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let back = follow(&Browser::new(&second), &mock, "oEverywhere", url.as_str())
        .await
        .unwrap();
    let tokens = rp
        .exchange_code(AuthorizationCode::new(param(&back, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&call2)
        .await
        .unwrap();
    let call3 = |r| http3.call(r);
    let renewed = rp
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .unwrap()
        .request_async(&call3)
        .await
        .expect("a third instance refreshes");
    let call1 = |r| http1.call(r);
    let replay = rp
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .unwrap()
        .request_async(&call1)
        .await;
    assert!(
        replay.is_err(),
        "the spent refresh token is refused on the first instance too"
    );
    let info: Result<Userinfo, _> = rp
        .user_info(renewed.access_token().clone(), None)
        .unwrap()
        .request_async(&call1)
        .await;
    assert!(info.is_err(), "and the replay revoked the grant everywhere");
}

fn s_form(code: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.into()),
        ("redirect_uri", REDIRECT.into()),
        ("code_verifier", "x".repeat(43)),
    ]
}
