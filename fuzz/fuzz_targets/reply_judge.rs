//! `wxportal send`'s judge of a server's answer: any body gets a verdict, never a panic.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wxportal::wechat::push::{Push, check_reply};
use wxportal::wechat::{AesKey, MessageCrypto};

const TOKEN: &str = "fixtureToken42";

fn crypto() -> &'static MessageCrypto {
    static CRYPTO: OnceLock<MessageCrypto> = OnceLock::new();
    CRYPTO.get_or_init(|| {
        MessageCrypto::new(
            AesKey::from_encoding_aes_key("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C")
                .expect("the fixture key"),
            "wx5823bf96d3bd56c7",
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let push = Push {
        to: "gh_fixture0001".into(),
        from: "oFixtureFollower0000000001".into(),
        create_time: 1_714_000_000,
        msg_type: "text".into(),
        fields: vec![
            ("Content".into(), "你好".into()),
            ("MsgId".into(), "1".into()),
        ],
    };
    for crypto in [None, Some(crypto())] {
        let verdict = check_reply(&push, TOKEN, crypto, 200, Duration::from_millis(10), body);
        let _ = verdict.accepted();
    }
});
