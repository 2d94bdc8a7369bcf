//! URL verification, signatures, clocks and bad requests.

use super::*;

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
async fn health_and_readiness_probes_answer() {
    let app = TestApp::spawn(&[]).await;
    let mut ids = std::collections::HashSet::new();
    for path in ["/healthz", "/readyz", "/healthz"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        // Each request its own id: a random UUID.
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert!(id.as_bytes()[14] == b'4', "version 4: {id}");
        assert!(ids.insert(id));
    }
}
