//! What an app or a stranger can hand the OpenID Connect provider: an `id_token_hint` (any JWT), a PKCE
//! verifier and challenge, a redirect URI. None of them panics; a forged or altered token never verifies;
//! what the provider signs always verifies to the claims it signed.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wxportal::oidc::keys::{SigningKey, jwks, verify};
use wxportal::oidc::{clients::check_redirect_uri, pkce_matches, valid_challenge};

fn key() -> &'static (SigningKey, serde_json::Value) {
    static KEY: OnceLock<(SigningKey, serde_json::Value)> = OnceLock::new();
    KEY.get_or_init(|| {
        let row = SigningKey::generate();
        let published = jwks(std::slice::from_ref(&row));
        (SigningKey::from_row(&row).expect("a generated key"), published)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (signer, published) = key();
    // A token this key never signed never verifies.
    assert!(verify(text, published).is_err(), "an unsigned token verified");
    let _ = check_redirect_uri(text);
    let _ = valid_challenge(text);
    let (verifier, challenge) = text.split_once('\n').unwrap_or((text, text));
    let _ = pkce_matches(verifier, challenge);
    // Round trip: claims we sign verify to themselves; flipping any byte of the token breaks it.
    let claims = serde_json::json!({ "sub": text, "aud": "fuzz" });
    let token = signer.sign(&claims);
    assert_eq!(verify(&token, published), Ok(claims));
    if let Some(&first) = data.first() {
        let mut bytes = token.into_bytes();
        let at = usize::from(first) % bytes.len();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).expect("ASCII");
        if let Ok(verified) = verify(&altered, published) {
            // Only a change base64url decoding ignores (the unused low bits of a last character) can pass.
            assert_eq!(verified["sub"], text);
        }
    }
});
