use std::sync::Arc;
use std::time::Duration;

use wxportal::cli::send::SendMessage;
use wxportal::time::unix_now;
use wxportal::wechat::MessageMode;
use wxportal::wechat::XmlFields;
use wxportal::wechat::push::{self, verification_query};

use crate::helpers::*;

#[tokio::test]
async fn url_verification_answers_echostr_exactly() {
    let app = TestApp::spawn(&[]).await;
    let query = verification_query(TOKEN, &unix_now().to_string(), "777", "echo 回声\n");
    let (status, body) = app.get_wechat(&query).await;
    assert_eq!(status, 200);
    assert_eq!(body, "echo 回声\n");
}

#[tokio::test]
async fn url_verification_with_a_wrong_token_is_forbidden() {
    let app = TestApp::spawn(&[]).await;
    let query = verification_query("otherToken", "1", "2", "echo");
    let (status, body) = app.get_wechat(&query).await;
    assert_eq!(status, 403);
    assert!(!body.contains("echo"));
}

#[tokio::test]
async fn url_verification_without_a_parameter_is_a_bad_request() {
    let app = TestApp::spawn(&[]).await;
    let full = verification_query(TOKEN, "1", "2", "echo");
    for missing in ["signature", "timestamp", "nonce", "echostr"] {
        let query: Vec<_> = full
            .iter()
            .filter(|(k, _)| *k != missing)
            .cloned()
            .collect();
        let (status, body) = app.get_wechat(&query).await;
        assert_eq!(status, 400, "without {missing}");
        assert!(body.contains(missing));
    }
}

/// Every `wxportal send` message kind, as the simulator builds it.
fn every_kind() -> Vec<SendMessage> {
    let k = || "KEY_1".to_string();
    vec![
        SendMessage::Text {
            content: "hello".into(),
        },
        SendMessage::Image {
            pic_url: "http://p/x.jpg".into(),
        },
        SendMessage::Voice {
            recognition: Some("识别".into()),
        },
        SendMessage::Video,
        SendMessage::Shortvideo,
        SendMessage::Location {
            x: "23.1".into(),
            y: "113.3".into(),
            label: "广州".into(),
        },
        SendMessage::Link {
            title: "t".into(),
            url: "http://u".into(),
            description: "d".into(),
        },
        SendMessage::Subscribe {
            scene: Some("42".into()),
        },
        SendMessage::Unsubscribe,
        SendMessage::Scan { scene: "42".into() },
        SendMessage::ReportLocation {
            latitude: "23.1".into(),
            longitude: "113.3".into(),
        },
        SendMessage::Click { key: k() },
        SendMessage::View {
            url: "http://v".into(),
        },
        SendMessage::ScancodePush {
            key: k(),
            result: "r".into(),
        },
        SendMessage::ScancodeWaitmsg {
            key: k(),
            result: "r".into(),
        },
        SendMessage::PicSysphoto { key: k() },
        SendMessage::PicPhotoOrAlbum { key: k() },
        SendMessage::PicWeixin { key: k() },
        SendMessage::LocationSelect { key: k() },
        SendMessage::ViewMiniprogram {
            page_path: "pages/index".into(),
        },
        SendMessage::TemplateJobFinish,
        SendMessage::MassJobFinish,
        SendMessage::Event {
            name: "brand_new_event".into(),
            key: None,
        },
    ]
}

#[tokio::test]
async fn every_message_and_event_type_is_stored_and_answered_in_every_mode() {
    let app = TestApp::spawn(&[
        ("WXPORTAL_ENCODING_AES_KEY", AES_KEY),
        ("WXPORTAL_MESSAGE_MODE", "compat"),
    ])
    .await;
    let c = crypto(AES_KEY);
    let mut expected_rows = 0;
    for (mode, crypto) in [
        (MessageMode::Plain, None),
        (MessageMode::Compat, Some(&c)),
        (MessageMode::Safe, Some(&c)),
    ] {
        for (i, kind) in every_kind().into_iter().enumerate() {
            let msg_id = format!("{}{}", 1000 + i, mode as u8);
            let push = kind
                .to_push("gh_test", &format!("o{i}_{mode:?}"), unix_now(), &msg_id)
                .unwrap();
            let started = std::time::Instant::now();
            let (status, body) = app.post(&push, mode, crypto).await;
            let verdict = push::check_reply(&push, TOKEN, crypto, status, started.elapsed(), &body);
            assert!(
                verdict.accepted(),
                "{kind:?} in {mode:?}: {:?} / {body}",
                verdict.problems
            );
            let reply_type = verdict
                .reply
                .as_ref()
                .and_then(|r| r.get("MsgType").map(str::to_owned));
            match &kind {
                // The default reply (收到消息回复) answers every message a follower sends.
                SendMessage::Text { .. }
                | SendMessage::Image { .. }
                | SendMessage::Voice { .. }
                | SendMessage::Video
                | SendMessage::Shortvideo
                | SendMessage::Location { .. }
                | SendMessage::Link { .. } => {
                    let content = verdict.reply.as_ref().unwrap().text("Content");
                    assert!(
                        content.contains(&format!("{PUBLIC_URL}/")),
                        "help text links the guide: {content}"
                    );
                }
                SendMessage::Subscribe { .. } => {
                    let content = verdict.reply.as_ref().unwrap().text("Content");
                    assert!(
                        content.contains("欢迎") && content.contains(&format!("{PUBLIC_URL}/")),
                        "{content}"
                    );
                }
                _ => assert!(
                    verdict.silent && reply_type.is_none(),
                    "the event {kind:?} should answer success, got {body}"
                ),
            }
            expected_rows += 1;
            assert_eq!(app.message_count().await, expected_rows);
            let stored = &app.store.recent_messages(1).await.unwrap()[0].message;
            assert_eq!(stored.msg_type, push.msg_type);
            assert_eq!(stored.openid, push.from);
            assert_eq!(stored.encrypted, mode != MessageMode::Plain);
            assert_eq!(stored.raw_xml, push.to_xml());
            let fields: serde_json::Value = serde_json::from_str(&stored.fields).unwrap();
            for (name, value) in &push.fields {
                assert_eq!(
                    fields[name].as_str().unwrap_or_default(),
                    value.as_str(),
                    "{kind:?} field {name}"
                );
            }
            if push.msg_type == "event" {
                assert_eq!(stored.event.as_deref(), Some(push.fields[0].1.as_str()));
            }
        }
    }
}

#[tokio::test]
async fn any_content_type_or_none_is_accepted() {
    let app = TestApp::spawn(&[]).await;
    for (i, ct) in [
        Some("text/xml"),
        Some("application/xml"),
        None,
        Some("text/plain; charset=utf-8"),
    ]
    .into_iter()
    .enumerate()
    {
        let push = text("oCT", "hi", &format!("90{i}"));
        let query = push
            .sign(
                TOKEN,
                MessageMode::Plain,
                None,
                &unix_now().to_string(),
                &i.to_string(),
            )
            .query;
        let (status, body) = app.post_raw(&query, ct, push.to_xml()).await;
        assert_eq!(status, 200, "{ct:?}: {body}");
        assert!(
            body.contains("<MsgType><![CDATA[text]]></MsgType>"),
            "{ct:?}: {body}"
        );
    }
}

#[tokio::test]
async fn a_wrong_signature_is_forbidden_and_nothing_is_stored() {
    let app = TestApp::spawn(&[]).await;
    let push = text("oX", "hi", "1");
    let mut signed = push.sign(
        TOKEN,
        MessageMode::Plain,
        None,
        &unix_now().to_string(),
        "1",
    );
    signed.query[0].1 = "0".repeat(40);
    let (status, body) = app.post_signed(&signed).await;
    assert_eq!(status, 403);
    assert!(body.contains("signature"));
    let signed = push.sign(
        "wrongToken",
        MessageMode::Plain,
        None,
        &unix_now().to_string(),
        "1",
    );
    assert_eq!(app.post_signed(&signed).await.0, 403);
    assert_eq!(app.message_count().await, 0);
}

#[tokio::test]
async fn a_stale_timestamp_is_refused_unless_the_check_is_off() {
    let app = TestApp::spawn(&[("WXPORTAL_MAX_CLOCK_SKEW", "60")]).await;
    let push = text("oX", "hi", "1");
    for ts in [unix_now() - 120, unix_now() + 120] {
        let signed = push.sign(TOKEN, MessageMode::Plain, None, &ts.to_string(), "1");
        let (status, body) = app.post_signed(&signed).await;
        assert_eq!(status, 403);
        assert!(body.contains("timestamp"));
    }
    let signed = push.sign(TOKEN, MessageMode::Plain, None, "not-a-number", "1");
    assert_eq!(app.post_signed(&signed).await.0, 400);
    assert_eq!(app.message_count().await, 0);

    let lenient = TestApp::spawn(&[("WXPORTAL_MAX_CLOCK_SKEW", "0")]).await;
    let signed = push.sign(TOKEN, MessageMode::Plain, None, "1000000000", "1");
    assert_eq!(lenient.post_signed(&signed).await.0, 200);
}

#[tokio::test]
async fn bad_bodies_get_a_clear_4xx_and_nothing_is_stored() {
    let app = TestApp::spawn(&[]).await;
    let query = signed_query(&unix_now().to_string());
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("malformed", b"<xml><ToUserName>a</xml>".to_vec(), 400, "xml"),
        ("not xml", b"{\"json\": true}".to_vec(), 400, "xml"),
        ("empty", Vec::new(), 400, "xml"),
        ("not utf-8", vec![0xff, 0xfe, 0x3c], 400, "UTF-8"),
        ("missing FromUserName", b"<xml><ToUserName>a</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>".to_vec(), 400, "FromUserName"),
        (
            "doctype",
            br#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><ToUserName>&x;</ToUserName></xml>"#.to_vec(),
            400,
            "DOCTYPE",
        ),
        ("undeclared entity", b"<xml><ToUserName>&x;</ToUserName></xml>".to_vec(), 400, "entity"),
    ];
    for (name, body, status, needle) in cases {
        let (got, text) = app.post_raw(&query, Some("text/xml"), body).await;
        assert_eq!(got, status, "{name}: {text}");
        assert!(text.contains(needle), "{name}: {text}");
    }
    assert_eq!(app.message_count().await, 0);
}

#[tokio::test]
async fn a_huge_body_is_refused_with_413() {
    let app = TestApp::spawn(&[]).await;
    let query = signed_query(&unix_now().to_string());
    let huge = format!(
        "<xml><Content>{}</Content></xml>",
        "a".repeat(2 * 1024 * 1024)
    );
    let (status, _) = app.post_raw(&query, Some("text/xml"), huge).await;
    assert_eq!(status, 413);
    assert_eq!(app.message_count().await, 0);
}

#[tokio::test]
async fn missing_query_parameters_are_bad_requests() {
    let app = TestApp::spawn(&[]).await;
    let full = signed_query(&unix_now().to_string());
    for missing in ["signature", "timestamp", "nonce"] {
        let query: Vec<_> = full
            .iter()
            .filter(|(k, _)| *k != missing)
            .cloned()
            .collect();
        let (status, body) = app
            .post_raw(&query, None, text("o", "x", "1").to_xml())
            .await;
        assert_eq!(status, 400, "without {missing}");
        assert!(body.contains(missing));
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_concurrent_tries_are_processed_once_and_answered_alike() {
    let app = Arc::new(TestApp::spawn(&[]).await);
    for round in 0..5 {
        let push = text(&format!("oC{round}"), "同时", &format!("555{round}"));
        let signed = push.sign(
            TOKEN,
            MessageMode::Plain,
            None,
            &unix_now().to_string(),
            &round.to_string(),
        );
        let tries: Vec<_> = (0..3)
            .map(|_| {
                let (app, signed) = (app.clone(), signed.clone());
                tokio::spawn(async move { app.post_signed(&signed).await })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tries {
            answers.push(t.await.unwrap());
        }
        assert!(
            answers.iter().all(|a| a.0 == 200 && a == &answers[0]),
            "{answers:?}"
        );
        assert!(answers[0].1.contains("<Content>"));
    }
    assert_eq!(app.message_count().await, 5);
}

#[tokio::test]
async fn a_retry_after_a_restart_gets_the_stored_reply() {
    let app = TestApp::spawn(&[]).await;
    let dir = app.dir.clone();
    let push = text("oRestart", "hi", "4242");
    let signed = push.sign(
        TOKEN,
        MessageMode::Plain,
        None,
        &unix_now().to_string(),
        "1",
    );
    let (_, first) = app.post_signed(&signed).await;
    app.stop().await;

    let app = TestApp::spawn_in(dir, &[]).await;
    // The stored answer comes back byte for byte, CreateTime included; nothing is stored twice.
    std::thread::sleep(Duration::from_millis(1100));
    let (status, again) = app.post_signed(&signed).await;
    assert_eq!(status, 200);
    assert_eq!(again, first);
    assert_eq!(app.message_count().await, 1);
}

#[tokio::test]
async fn subscribe_events_keep_the_follower_row_current() {
    let app = TestApp::spawn(&[]).await;
    let t = unix_now();
    app.post(&event("oSub", "subscribe", t), MessageMode::Plain, None)
        .await;
    let user = app.store.user("oSub").await.unwrap().unwrap();
    assert!(user.subscribed);
    assert_eq!(user.nickname, None);

    app.post(
        &event("oSub", "unsubscribe", t + 10),
        MessageMode::Plain,
        None,
    )
    .await;
    assert!(!app.store.user("oSub").await.unwrap().unwrap().subscribed);
    // A late delivery of an older subscribe does not undo the newer unsubscribe.
    app.post(&event("oSub", "subscribe", t + 5), MessageMode::Plain, None)
        .await;
    assert!(!app.store.user("oSub").await.unwrap().unwrap().subscribed);
    app.post(
        &event("oSub", "subscribe", t + 20),
        MessageMode::Plain,
        None,
    )
    .await;
    assert!(app.store.user("oSub").await.unwrap().unwrap().subscribed);

    // A message from someone never seen creates their row.
    app.post(&text("oNew", "hi", "8"), MessageMode::Plain, None)
        .await;
    assert!(app.store.user("oNew").await.unwrap().unwrap().subscribed);
}

#[tokio::test]
async fn health_and_readiness_probes_answer() {
    let app = TestApp::spawn(&[]).await;
    for path in ["/healthz", "/readyz"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers().contains_key("x-request-id"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_keeps_the_first_of_two_writes_racing_for_one_message() {
    let app = TestApp::spawn(&[]).await;
    let message = |reply: &str| wxportal::store::NewMessage {
        dedup_key: "m:race".into(),
        openid: "oRace".into(),
        account: "gh".into(),
        msg_type: "text".into(),
        event: None,
        msg_id: Some("race".into()),
        created_at: 1,
        received_at: unix_now(),
        fields: "{}".into(),
        raw_xml: "<xml/>".into(),
        reply_xml: reply.into(),
        encrypted: false,
        signature: None,
        jobs: Vec::new(),
    };
    let (a, b) = tokio::join!(
        app.store.record_message(message("first")),
        app.store.record_message(message("second"))
    );
    let results = [a.unwrap(), b.unwrap()];
    use wxportal::store::Recorded;
    let inserted = results.iter().filter(|r| **r == Recorded::Inserted).count();
    assert_eq!(inserted, 1, "{results:?}");
    let winner = if results[0] == Recorded::Inserted {
        "first"
    } else {
        "second"
    };
    assert!(
        results.contains(&Recorded::Duplicate {
            reply_xml: winner.into()
        }),
        "{results:?}"
    );
    assert_eq!(app.message_count().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_a_steady_stream_of_messages_the_write_ahead_log_starts_over() {
    use sqlx::Connection;
    let app = Arc::new(TestApp::spawn(&[]).await);
    let stored = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let until = tokio::time::Instant::now() + Duration::from_millis(3500);
    // 32 writers keep the store's writer busy without a pause: a checkpoint on another connection never
    // finds the log still, so only the writer itself can let it start over.
    let writers: Vec<_> = (0..32)
        .map(|w| {
            let (app, stored) = (app.clone(), stored.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while tokio::time::Instant::now() < until {
                    let message = wxportal::store::NewMessage {
                        dedup_key: format!("m:{w}:{n}"),
                        openid: format!("oStream{w}"),
                        account: "gh".into(),
                        msg_type: "text".into(),
                        event: None,
                        msg_id: Some(format!("{w}{n}")),
                        created_at: unix_now(),
                        received_at: unix_now(),
                        fields: "{}".into(),
                        raw_xml: format!("<xml><Content>{}</Content></xml>", "x".repeat(600)),
                        reply_xml: String::new(),
                        encrypted: false,
                        signature: None,
                        jobs: Vec::new(),
                    };
                    app.store.record_message(message).await.unwrap();
                    stored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();

    // The log's length in frames, sampled as the messages stream in: it must fall back at least once.
    let mut observer = sqlx::SqliteConnection::connect(&app.database_url())
        .await
        .unwrap();
    let mut lengths = Vec::new();
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, frames, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut observer)
            .await
            .unwrap();
        lengths.push(frames);
    }
    for w in writers {
        w.await.unwrap();
    }
    let restarts = lengths.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(restarts >= 1, "the log only grew: {lengths:?}");
    // Nothing was lost on the way.
    let stored = stored.load(std::sync::atomic::Ordering::Relaxed);
    assert!(stored > 100, "only {stored} messages stored");
    assert_eq!(app.message_count().await, stored as i64);
}
