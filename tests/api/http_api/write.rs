//! The API's writes against the stand-in WeChat: answers, template messages and QR codes made once per
//! `Idempotency-Key` (retried, raced, or reused with another request), every refusal a JSON error with
//! nothing stored or called, and each token held to its rate.

use serde_json::{Value, json};
use wxportal::demo::wechat::templates::TEMPLATES;
use wxportal::wechat::MessageMode;

use super::{Reply, code, post, token};
use crate::admin::seed_users;
use crate::helpers::*;
use crate::mock::{APPSECRET, MockWeChat};

const QR_CREATE: &str = "/cgi-bin/qrcode/create";
const TEMPLATE_SEND: &str = "/cgi-bin/message/template/send";

pub(super) async fn with_wechat(vars: &[(&str, &str)]) -> (TestApp, MockWeChat) {
    let mock = MockWeChat::start().await;
    let mut all = vec![
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
    ];
    all.extend_from_slice(vars);
    (TestApp::spawn(&all).await, mock)
}

/// A follower who just wrote (their 48-hour window is open).
pub(super) async fn wrote(app: &TestApp, openid: &str) {
    let (status, _) = app
        .post(&text(openid, "在吗", "9100"), MessageMode::Plain, None)
        .await;
    assert_eq!(status, 200);
}

async fn custom_jobs(app: &TestApp) -> i64 {
    app.raw_db()
        .await
        .number("SELECT count(*) FROM outbox WHERE kind = 'custom'")
        .await
}

async fn get(app: &TestApp, path: &str, token: &str) -> Reply {
    super::call(app, reqwest::Method::GET, path, Some(token), None, &[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_is_sent_once_per_idempotency_key_even_when_retried_or_raced() {
    let (app, mock) = with_wechat(&[]).await;
    let (_, sender) = token(&app, "messages:send");
    let who = "oApiAnswer000000000000000001";
    wrote(&app, who).await;
    let path = format!("/api/v1/followers/{who}/answers");
    let body = r#"{"text": "您好，订单已发出"}"#;

    let first = post(&app, &path, Some(&sender), body, Some("answer-1")).await;
    assert_eq!(first.status, 202, "{}", first.json);
    assert_eq!(first.json["state"], "queued");
    assert_eq!(first.header("idempotent-replayed"), "");
    let id = first.json["id"].as_i64().unwrap();
    assert!(eventually(10, || mock.sent().len() == 1).await);
    assert_eq!(
        mock.sent()[0],
        json!({"touser": who, "msgtype": "text", "text": {"content": "您好，订单已发出"}})
    );

    // The client did not see the answer and sends again: the same answer, nothing sent twice.
    let again = post(&app, &path, Some(&sender), body, Some("answer-1")).await;
    assert_eq!((again.status, again.json["id"].as_i64()), (202, Some(id)));
    assert_eq!(again.header("idempotent-replayed"), "true");
    // WeChat has the answer; its outcome is committed with the writer's next group, just after.
    let mut status = get(&app, &format!("/api/v1/answers/{id}"), &sender).await;
    for _ in 0..200 {
        if status.status != 200 || status.json["state"] != "sending" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        status = get(&app, &format!("/api/v1/answers/{id}"), &sender).await;
    }
    assert_eq!(status.status, 200);
    assert_eq!(status.json["state"], "done", "{}", status.json);

    // The key with another request is refused, and queues nothing.
    let other = post(
        &app,
        &path,
        Some(&sender),
        r#"{"text": "另一条"}"#,
        Some("answer-1"),
    )
    .await;
    assert_eq!(
        (other.status, code(&other.json)),
        (422, "idempotency_key_reused")
    );

    // Eight copies of one request at once: one job, the same answer for all.
    let racing: Vec<_> = (0..8)
        .map(|_| post(&app, &path, Some(&sender), body, Some("answer-2")))
        .collect();
    let answers = futures_util::future::join_all(racing).await;
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, 202, "{}", r.json);
            r.json["id"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(custom_jobs(&app).await, 2);
    assert!(eventually(10, || mock.sent().len() == 2).await);

    // Keys are per token: another token's same key is its own.
    let (_, second) = token(&app, "messages:send");
    let theirs = post(&app, &path, Some(&second), body, Some("answer-1")).await;
    assert_eq!(theirs.status, 202);
    assert_ne!(theirs.json["id"].as_i64(), Some(id));
    assert_eq!(custom_jobs(&app).await, 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_answers_are_json_errors_and_queue_nothing() {
    let (app, mock) = with_wechat(&[]).await;
    let (_, sender) = token(&app, "messages:send");
    let who = "oApiAnswer000000000000000002";
    wrote(&app, who).await;
    seed_users(&app, 1, |_| "没说过话".into()).await;
    let silent = crate::admin::openid(0);
    let path = format!("/api/v1/followers/{who}/answers");
    let long = json!({"text": "长".repeat(2001)}).to_string();
    let long_key = "k".repeat(256);
    for (target, body, key, status, expected) in [
        (path.as_str(), "{", None, 400, "invalid_request"),
        (path.as_str(), "[]", None, 400, "invalid_request"),
        (
            path.as_str(),
            r#"{"txt": "hi"}"#,
            None,
            400,
            "invalid_request",
        ),
        (path.as_str(), r#"{}"#, None, 400, "invalid_request"),
        (
            path.as_str(),
            r#"{"text": "a", "media_id": "M1"}"#,
            None,
            400,
            "invalid_request",
        ),
        (
            path.as_str(),
            r#"{"media_id": "a/b"}"#,
            None,
            400,
            "invalid_request",
        ),
        (path.as_str(), long.as_str(), None, 400, "invalid_request"),
        (
            path.as_str(),
            r#"{"text": "hi"}"#,
            Some(long_key.as_str()),
            400,
            "invalid_request",
        ),
        (
            path.as_str(),
            r#"{"text": "hi"}"#,
            Some("空格 key"),
            400,
            "invalid_request",
        ),
        (
            "/api/v1/followers/oNobody/answers",
            r#"{"text": "hi"}"#,
            None,
            404,
            "not_found",
        ),
    ] {
        let reply = post(&app, target, Some(&sender), body, key).await;
        assert_eq!(
            (reply.status, code(&reply.json)),
            (status, expected),
            "{body}: {}",
            reply.json
        );
    }
    let closed = post(
        &app,
        &format!("/api/v1/followers/{silent}/answers"),
        Some(&sender),
        r#"{"text": "hi"}"#,
        Some("closed-1"),
    )
    .await;
    assert_eq!(
        (closed.status, code(&closed.json)),
        (409, "window_closed"),
        "{}",
        closed.json
    );
    assert_eq!(custom_jobs(&app).await, 0);
    assert_eq!(
        app.rows("api_idempotency").await,
        0,
        "a refusal records no key"
    );
    for path in ["/api/v1/answers/999", "/api/v1/answers/abc"] {
        let reply = get(&app, path, &sender).await;
        assert_eq!((reply.status, code(&reply.json)), (404, "not_found"));
    }
    assert!(mock.sent().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_message_goes_once_per_key_and_its_campaign_reports_progress() {
    let (app, mock) = with_wechat(&[]).await;
    let (_, sender) = token(&app, "templates:send");
    let template = TEMPLATES[0].0;
    let to = "oApiTemplate0000000000000001";
    let body = json!({
        "template_id": template, "to": to, "url": "https://shop.example.com/o/7",
        "data": {"first": "您的订单已发货", "keyword1": {"value": "A-7", "color": "#FF0000"}},
    })
    .to_string();
    let first = post(
        &app,
        "/api/v1/templates/send",
        Some(&sender),
        &body,
        Some("order-7"),
    )
    .await;
    assert_eq!(first.status, 202, "{}", first.json);
    assert_eq!(first.json["total"], 1);
    assert_eq!(first.json["created_by"], "api:crm");
    let id = first.json["id"].as_i64().unwrap();
    let again = post(
        &app,
        "/api/v1/templates/send",
        Some(&sender),
        &body,
        Some("order-7"),
    )
    .await;
    assert_eq!((again.status, again.json["id"].as_i64()), (202, Some(id)));
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert!(eventually(10, || mock.templates_sent().len() == 1).await);
    assert_eq!(
        mock.templates_sent()[0],
        json!({"touser": to, "template_id": template, "url": "https://shop.example.com/o/7",
               "data": {"first": {"value": "您的订单已发货"},
                        "keyword1": {"value": "A-7", "color": "#FF0000"}}})
    );
    let mut progress = Value::Null;
    for _ in 0..100 {
        progress = get(&app, &format!("/api/v1/campaigns/{id}"), &sender)
            .await
            .json;
        if progress["state"] == "done" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(progress["progress"]["sent"], 1, "{progress}");
    assert_eq!(progress["progress"]["remaining"], 0);

    // To every follower a filter matches, as one campaign: the 20 of 30 who still follow.
    seed_users(&app, 30, |i| format!("会员{i}")).await;
    let many = post(
        &app,
        "/api/v1/templates/send",
        Some(&sender),
        &json!({"template_id": template, "audience": {"search": "会员", "subscribed": true},
                "data": {"first": "周末大促"}})
        .to_string(),
        None,
    )
    .await;
    assert_eq!((many.status, many.json["total"].as_i64()), (202, Some(20)));
    assert!(eventually(20, || mock.templates_sent().len() == 21).await);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_template_messages_create_no_campaign() {
    let (app, mock) = with_wechat(&[]).await;
    let (_, sender) = token(&app, "templates:send");
    let template = TEMPLATES[0].0;
    for body in [
        json!({"template_id": template, "data": {"first": "x"}}),
        json!({"template_id": template, "to": "o1", "audience": {}, "data": {"first": "x"}}),
        json!({"template_id": template, "to": "o".repeat(65), "data": {"first": "x"}}),
        json!({"template_id": "no-such-template", "to": "o1", "data": {"first": "x"}}),
        json!({"template_id": template, "to": "o1", "data": {"nosuchfield": "x"}}),
        json!({"template_id": template, "to": "o1", "data": {"first": {"value": "x", "color": "red"}}}),
        json!({"template_id": template, "to": "o1", "data": {"first": "x"}, "url": "javascript:alert(1)"}),
        json!({"template_id": template, "to": "o1", "data": {"first": "x"}, "miniprogram": {"appid": "wx1"}}),
        json!({"template_id": template, "to": "o1", "data": {"first": "x".repeat(201)}}),
        json!({"template_id": template, "to": "o1", "data": {}}),
        json!({"template_id": template, "to": "o1", "data": {"first": "x"}, "extra": 1}),
    ] {
        let reply = post(
            &app,
            "/api/v1/templates/send",
            Some(&sender),
            &body.to_string(),
            None,
        )
        .await;
        assert_eq!(
            (reply.status, code(&reply.json)),
            (400, "invalid_request"),
            "{body}: {}",
            reply.json
        );
    }
    assert_eq!(app.rows("campaigns").await, 0);
    assert_eq!(mock.calls(TEMPLATE_SEND), 0);
    let missing = get(&app, "/api/v1/campaigns/12345", &sender).await;
    assert_eq!((missing.status, code(&missing.json)), (404, "not_found"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_qr_code_is_created_on_wechat_once_per_key_and_read_back() {
    let (app, mock) = with_wechat(&[]).await;
    let (_, writer) = token(&app, "qr:write");
    let body = r#"{"name": "门店海报 A", "expires_in": 86400}"#;
    let first = post(
        &app,
        "/api/v1/qr-codes",
        Some(&writer),
        body,
        Some("poster-a"),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.json);
    assert_eq!(first.json["permanent"], false);
    assert!(first.json["scene"].as_str().unwrap().starts_with('q'));
    let again = post(
        &app,
        "/api/v1/qr-codes",
        Some(&writer),
        body,
        Some("poster-a"),
    )
    .await;
    assert_eq!((again.status, &again.json), (201, &first.json));
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(
        mock.calls(QR_CREATE),
        1,
        "a retry does not call WeChat again"
    );
    let id = first.json["id"].as_i64().unwrap();
    let read = get(&app, &format!("/api/v1/qr-codes/{id}"), &writer).await;
    assert_eq!((read.status, &read.json), (200, &first.json));

    let permanent = post(
        &app,
        "/api/v1/qr-codes",
        Some(&writer),
        r#"{"name": "永久码"}"#,
        None,
    )
    .await;
    assert_eq!(permanent.status, 201);
    assert_eq!(permanent.json["permanent"], true);
    assert_eq!(permanent.json["expires_at"], Value::Null);

    for bad in [
        r#"{"name": ""}"#,
        r#"{"name": "x", "expires_in": 10}"#,
        r#"{"name": "x", "expires_in": 99999999}"#,
        r#"{"name": "x", "scene": "mine"}"#,
        r#"{"expires_in": 600}"#,
    ] {
        let reply = post(&app, "/api/v1/qr-codes", Some(&writer), bad, None).await;
        assert_eq!(
            (reply.status, code(&reply.json)),
            (400, "invalid_request"),
            "{bad}: {}",
            reply.json
        );
    }
    assert_eq!(mock.calls(QR_CREATE), 2);
    assert_eq!(app.rows("qr_codes").await, 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_write_routes_need_their_scopes_and_a_token_is_held_to_its_rate() {
    let (app, mock) = with_wechat(&[("WXPORTAL_LIMIT_API", "5/1m")]).await;
    let who = "oApiScopes000000000000000001";
    wrote(&app, who).await;
    let (_, reader) = token(&app, "followers:read,messages:read");
    let answers = format!("/api/v1/followers/{who}/answers");
    for (path, body) in [
        (answers.as_str(), r#"{"text": "hi"}"#),
        (
            "/api/v1/templates/send",
            r#"{"template_id": "t", "to": "o", "data": {}}"#,
        ),
        ("/api/v1/qr-codes", r#"{"name": "x"}"#),
    ] {
        let none = post(&app, path, None, body, Some("k")).await;
        assert_eq!((none.status, code(&none.json)), (401, "unauthorized"));
        let narrow = post(&app, path, Some(&reader), body, Some("k")).await;
        assert_eq!(
            (narrow.status, code(&narrow.json)),
            (403, "insufficient_scope"),
            "{path}"
        );
    }
    assert_eq!(custom_jobs(&app).await, 0);
    assert_eq!(app.rows("api_idempotency").await, 0);
    assert_eq!(mock.calls(QR_CREATE) + mock.calls(TEMPLATE_SEND), 0);

    // The three refusals for scope counted; the limit is five a minute: two more, then a refusal
    // until the allowance refills.
    for _ in 0..2 {
        assert_eq!(get(&app, "/api/v1/followers", &reader).await.status, 200);
    }
    let limited = get(&app, "/api/v1/followers", &reader).await;
    assert_eq!(
        (limited.status, code(&limited.json)),
        (429, "rate_limited"),
        "{}",
        limited.json
    );
    let wait: u64 = limited.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Another token has its own allowance.
    let (_, other) = token(&app, "followers:read");
    assert_eq!(get(&app, "/api/v1/followers", &other).await.status, 200);
    app.stop().await;
}
