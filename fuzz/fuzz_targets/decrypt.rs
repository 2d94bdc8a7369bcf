//! Decryption and the encrypted envelope: any `<Encrypt>` is refused with an error or decrypted, and what
//! is encrypted always decrypts to itself.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wxportal::wechat::{AesKey, MessageCrypto, XmlFields};

/// The key of the test fixtures, so that their ciphertexts seed the corpus.
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const APPID: &str = "wx5823bf96d3bd56c7";

fn crypto() -> &'static MessageCrypto {
    static CRYPTO: OnceLock<MessageCrypto> = OnceLock::new();
    CRYPTO.get_or_init(|| {
        MessageCrypto::new(
            AesKey::from_encoding_aes_key(AES_KEY).expect("the fixture key"),
            APPID,
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let crypto = crypto();
    // The body as WeChat posts it, then the bare ciphertext.
    if let Ok(envelope) = XmlFields::parse(text)
        && let Some(encrypt) = envelope.get("Encrypt")
    {
        let _ = crypto.decrypt(encrypt);
    }
    let _ = crypto.decrypt(text);
    let _ = AesKey::from_encoding_aes_key(text);
    // Round trip: whatever we encrypt comes back unchanged.
    let sealed = crypto.encrypt(text);
    assert_eq!(crypto.decrypt(&sealed).as_deref(), Ok(text));
});
