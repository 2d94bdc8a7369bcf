//! Compatible and safe mode: encrypted answers, tampered ciphertexts, key rotation.

use super::*;

#[tokio::test]
async fn safe_mode_refuses_plaintext_and_answers_encrypted() {
    let app = TestApp::spawn(&[
        ("WXPORTAL_ENCODING_AES_KEY", AES_KEY),
        ("WXPORTAL_MESSAGE_MODE", "safe"),
    ])
    .await;
    let (status, body) = app
        .post(&text("oS", "hi", "1"), MessageMode::Plain, None)
        .await;
    assert_eq!(status, 403);
    assert!(body.contains("safe mode"));
    assert_eq!(app.message_count().await, 0);

    let c = crypto(AES_KEY);
    let push = text("oS", "hi", "2");
    let (status, body) = app.post(&push, MessageMode::Safe, Some(&c)).await;
    assert_eq!(status, 200);
    let outer = XmlFields::parse(&body).unwrap();
    assert!(
        outer.get("Encrypt").is_some() && outer.get("Content").is_none(),
        "{body}"
    );
    let verdict = push::check_reply(&push, TOKEN, Some(&c), status, Duration::ZERO, &body);
    assert!(verdict.accepted(), "{:?}", verdict.problems);
}

#[tokio::test]
async fn encrypted_replies_use_fresh_nonces_and_random_bytes() {
    let app = TestApp::spawn(&[("WXPORTAL_ENCODING_AES_KEY", AES_KEY)]).await;
    let c = crypto(AES_KEY);
    let push = text("oF", "hi", "77");
    let (_, first) = app.post(&push, MessageMode::Safe, Some(&c)).await;
    let (_, retry) = app.post(&push, MessageMode::Safe, Some(&c)).await;
    let (a, b) = (
        XmlFields::parse(&first).unwrap(),
        XmlFields::parse(&retry).unwrap(),
    );
    assert_ne!(a.get("Encrypt"), b.get("Encrypt"));
    assert_ne!(a.get("Nonce"), b.get("Nonce"));
    // Same reply inside: the retry is answered with what was stored.
    assert_eq!(
        c.decrypt(a.get("Encrypt").unwrap()),
        c.decrypt(b.get("Encrypt").unwrap())
    );
}

#[tokio::test]
async fn tampered_or_foreign_ciphertexts_are_refused_with_the_reason() {
    let app = TestApp::spawn(&[
        ("WXPORTAL_ENCODING_AES_KEY", AES_KEY),
        ("WXPORTAL_MESSAGE_MODE", "safe"),
    ])
    .await;
    let c = crypto(AES_KEY);
    let push = text("oT", "hi", "1");
    let ts = unix_now().to_string();
    let good = push.sign(TOKEN, MessageMode::Safe, Some(&c), &ts, "5");
    let encrypt = XmlFields::parse(&good.body).unwrap().text("Encrypt");
    let with_encrypt = |enc: &str| {
        let mut signed = good.clone();
        signed.body = format!(
            "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
        );
        for (k, v) in signed.query.iter_mut() {
            if *k == "msg_signature" {
                *v = wxportal::wechat::signature::sign(&[TOKEN, &ts, "5", enc]);
            }
        }
        signed
    };

    // Ciphertext changed without re-signing: msg_signature.
    let mut flipped = encrypt.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let mut unsigned = with_encrypt(&flipped);
    unsigned.query = good.query.clone();
    assert_reason(&app, &unsigned, 403, "msg_signature").await;

    // Re-signed garbage: decryption fails on padding, length or AppID, never a 500.
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut raw = engine.decode(&encrypt).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 0x55;
    let (status, body) = app.post_signed(&with_encrypt(&engine.encode(&raw))).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        ["padding", "appid", "decrypt"]
            .iter()
            .any(|r| body.contains(r)),
        "{body}"
    );

    // Another account's message, correctly signed.
    let foreign = wxportal::wechat::MessageCrypto::new(
        wxportal::wechat::AesKey::from_encoding_aes_key(AES_KEY).unwrap(),
        "wxffffffffffffffff",
    );
    assert_reason(
        &app,
        &with_encrypt(&foreign.encrypt(&push.to_xml())),
        400,
        "appid",
    )
    .await;

    // A pad byte of 0 and of 33.
    for pad in [0u8, 33] {
        let mut block = vec![7u8; 64];
        block[63] = pad;
        let enc = encrypt_raw(AES_KEY, &block);
        assert_reason(&app, &with_encrypt(&enc), 400, "padding").await;
    }
    // Not base64, not a block multiple.
    assert_reason(&app, &with_encrypt("%%%"), 400, "decrypt").await;
    assert_reason(&app, &with_encrypt("AAAA"), 400, "decrypt").await;

    // Missing msg_signature, missing Encrypt.
    let mut no_sig = good.clone();
    no_sig.query.retain(|(k, _)| *k != "msg_signature");
    assert_reason(&app, &no_sig, 400, "msg_signature").await;
    let mut no_encrypt = good.clone();
    no_encrypt.body = "<xml><ToUserName>gh</ToUserName></xml>".into();
    assert_reason(&app, &no_encrypt, 400, "Encrypt").await;

    // A decrypted body that is not XML.
    assert_reason(
        &app,
        &with_encrypt(&c.encrypt("not xml at all")),
        400,
        "xml",
    )
    .await;
    assert_eq!(app.message_count().await, 0);
}

async fn assert_reason(app: &TestApp, signed: &push::SignedPush, status: u16, reason: &str) {
    let (got, body) = app.post_signed(signed).await;
    assert_eq!(got, status, "{body}");
    assert!(body.contains(reason), "expected {reason} in {body}");
}

/// AES-256-CBC of whole blocks under an EncodingAESKey, with no padding added: for crafting bad pads.
fn encrypt_raw(key: &str, blocks: &[u8]) -> String {
    use aes::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::NoPadding};
    use base64::Engine;
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let k = lenient.decode(format!("{key}=")).unwrap();
    let mut buf = blocks.to_vec();
    let len = buf.len();
    cbc::Encryptor::<aes::Aes256>::new_from_slices(&k, &k[..16])
        .unwrap()
        .encrypt_padded::<NoPadding>(&mut buf, len)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(buf)
}

#[tokio::test]
async fn during_a_key_rotation_the_previous_key_still_works_and_is_answered_with() {
    let app = TestApp::spawn(&[
        ("WXPORTAL_ENCODING_AES_KEY", AES_KEY),
        ("WXPORTAL_ENCODING_AES_KEY_PREVIOUS", OLD_AES_KEY),
    ])
    .await;
    let (current, previous) = (crypto(AES_KEY), crypto(OLD_AES_KEY));
    let push = text("oR", "hi", "31");
    let (status, body) = app.post(&push, MessageMode::Safe, Some(&previous)).await;
    assert_eq!(status, 200, "{body}");
    let encrypt = XmlFields::parse(&body).unwrap().text("Encrypt");
    assert!(previous.decrypt(&encrypt).unwrap().contains("<Content>"));
    assert!(current.decrypt(&encrypt).is_err());

    let push = text("oR", "hi", "32");
    let (_, body) = app.post(&push, MessageMode::Safe, Some(&current)).await;
    let encrypt = XmlFields::parse(&body).unwrap().text("Encrypt");
    assert!(current.decrypt(&encrypt).is_ok());

    let (status, _) = app
        .post(
            &text("oR", "hi", "33"),
            MessageMode::Safe,
            Some(&crypto("0123456789abcdefghijklmnopqrstuvwxyzABCDEFG")),
        )
        .await;
    assert_eq!(status, 400);
}
