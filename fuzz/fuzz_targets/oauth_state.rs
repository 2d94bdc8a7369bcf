//! The OAuth state decoder: any `state` and `next` are refused or verified, never accepted forged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxportal::web::oauth_state::StateSigner;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let signer = StateSigner::new([42; 32]);
    let (state, next) = text.split_once('\n').unwrap_or((text, "/me"));
    let now = 1_700_000_000;
    if let Ok(verified) = signer.verify(Some(state), next, now) {
        // Only a state this key signed verifies: a random one would be a forged tag.
        let (again, _) = signer.issue(now, verified.scope, next);
        assert_eq!(again.len(), state.len());
    }
    // What we issue always verifies, for any `next`.
    let (issued, expected) = signer.issue(now, "snsapi_base", next);
    assert_eq!(signer.verify(Some(&issued), next, now), Ok(expected));
});
