//! Requests and replies produced by an independent implementation (wechatpy; see
//! tests/fixtures/gen_wechatpy.py), for every message type and mode.

use std::time::Duration;

use serde::Deserialize;
use wxportal::wechat::push::{self, Push};
use wxportal::wechat::{AesKey, Inbound, MessageCrypto, MessageKind, XmlFields};

use crate::helpers::TestApp;

#[derive(Deserialize)]
struct Fixtures {
    token: String,
    appid: String,
    aes_key: String,
    account: String,
    openid: String,
    requests: Vec<Request>,
    replies: Vec<ReplyFixture>,
}

#[derive(Deserialize)]
struct Request {
    name: String,
    mode: String,
    query: std::collections::BTreeMap<String, String>,
    body: String,
    plaintext: String,
    wechatpy_type: String,
    wechatpy_event: Option<String>,
}

#[derive(Deserialize)]
struct ReplyFixture {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    broken: bool,
    plaintext: String,
    encrypted: String,
}

fn load() -> Fixtures {
    serde_json::from_str(include_str!("../fixtures/wechatpy.json")).unwrap()
}

#[tokio::test]
async fn every_wechatpy_request_is_accepted_stored_and_typed_alike() {
    let f = load();
    let app = TestApp::spawn(&[
        ("WXPORTAL_TOKEN", &f.token),
        ("WXPORTAL_APPID", &f.appid),
        ("WXPORTAL_ENCODING_AES_KEY", &f.aes_key),
        ("WXPORTAL_MESSAGE_MODE", "compat"),
        ("WXPORTAL_MAX_CLOCK_SKEW", "0"),
    ])
    .await;
    let crypto = MessageCrypto::new(
        AesKey::from_encoding_aes_key(&f.aes_key).unwrap(),
        f.appid.clone(),
    );
    assert_eq!(f.requests.len(), 72);
    for (i, r) in f.requests.iter().enumerate() {
        let query: Vec<(&str, String)> = r
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let (status, body) = app.post_raw(&query, Some("text/xml"), r.body.clone()).await;
        assert_eq!(status, 200, "{} {}: {body}", r.name, r.mode);

        let inbound = Inbound::parse(&r.plaintext).unwrap();
        let push = Push {
            to: f.account.clone(),
            from: f.openid.clone(),
            create_time: inbound.create_time,
            msg_type: inbound.msg_type().to_owned(),
            fields: Vec::new(),
        };
        let c = (r.mode != "plain").then_some(&crypto);
        let verdict = push::check_reply(&push, &f.token, c, status, Duration::ZERO, &body);
        assert!(
            verdict.accepted(),
            "{} {}: {:?}",
            r.name,
            r.mode,
            verdict.problems
        );

        // Our typing agrees with wechatpy's on what the message is.
        match (&inbound.kind, r.wechatpy_type.as_str()) {
            (MessageKind::Event(_), "event") => {
                let ours = inbound.event_name().unwrap().to_ascii_lowercase();
                let theirs = r.wechatpy_event.clone().unwrap();
                assert!(
                    theirs.starts_with(&ours) || ours == "subscribe",
                    "{ours} vs {theirs}"
                );
            }
            (MessageKind::Unknown { .. }, "unknown") => {}
            (MessageKind::Event(wxportal::wechat::Event::Unknown { .. }), "unknown") => {}
            (kind, theirs) => assert_eq!(inbound.msg_type(), theirs, "{kind:?}"),
        }
        let stored = &app.store.recent_messages(1).await.unwrap()[0].message;
        assert_eq!(
            app.message_count().await,
            i as i64 + 1,
            "{} {}",
            r.name,
            r.mode
        );
        assert_eq!(stored.raw_xml, r.plaintext);
        assert_eq!(stored.encrypted, r.mode != "plain");
    }
}

#[test]
fn every_wechatpy_encrypted_reply_passes_the_wechat_side_check() {
    let f = load();
    let crypto = MessageCrypto::new(
        AesKey::from_encoding_aes_key(&f.aes_key).unwrap(),
        f.appid.clone(),
    );
    let push = Push {
        to: f.account.clone(),
        from: f.openid.clone(),
        create_time: 0,
        msg_type: "text".into(),
        fields: Vec::new(),
    };
    let check =
        |body: &str| push::check_reply(&push, &f.token, Some(&crypto), 200, Duration::ZERO, body);
    assert_eq!(f.replies.len(), 8);
    for r in f.replies.iter().filter(|r| r.broken) {
        let verdict = check(&r.encrypted);
        assert!(
            verdict.problems[0].contains("not valid XML"),
            "{:?}",
            verdict.problems
        );
    }
    for r in f.replies.iter().filter(|r| !r.broken) {
        let verdict = check(&r.encrypted);
        assert!(verdict.accepted(), "{}: {:?}", r.kind, verdict.problems);
        let plain = XmlFields::parse(&r.plaintext).unwrap();
        assert_eq!(verdict.reply.unwrap(), plain, "{}", r.kind);
        // And a tampered signature is caught.
        let tampered =
            r.encrypted
                .replacen("<MsgSignature><![CDATA[", "<MsgSignature><![CDATA[0", 1);
        let verdict = check(&tampered);
        assert!(!verdict.accepted(), "{}", r.kind);
    }
}

/// JS-SDK signatures wechatpy computed (`gen_jsapi.py`), on the same inputs.
#[test]
fn every_wechatpy_jssdk_signature_matches() {
    #[derive(serde::Deserialize)]
    struct Case {
        nonce: String,
        ticket: String,
        timestamp: i64,
        url: String,
        signature: String,
    }
    let cases: Vec<Case> = serde_json::from_str(include_str!("../fixtures/jsapi.json")).unwrap();
    assert!(cases.len() >= 4);
    for c in cases {
        assert_eq!(
            wxportal::web::jssdk::signature(&c.ticket, &c.nonce, c.timestamp, &c.url),
            c.signature,
            "{}",
            c.url
        );
    }
}
