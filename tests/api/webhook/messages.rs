//! Every message and event type, in every mode, stored and answered; followers kept current.

use super::*;

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
async fn a_followers_last_seen_time_moves_on_by_the_minute() {
    let app = TestApp::spawn(&[]).await;
    app.post(&text("oChat", "一", "9101"), MessageMode::Plain, None)
        .await;
    let first = app.store.user("oChat").await.unwrap().unwrap().last_seen_at;
    assert!((first - unix_now()).abs() <= 2, "{first}");
    let mut db = app.raw_db().await;
    let seen_before = |secs: i64| {
        format!(
            "UPDATE users SET last_seen_at = {} WHERE openid = 'oChat'",
            unix_now() - secs
        )
    };
    // Seen 30 s ago: a message now leaves the row alone.
    db.execute(&seen_before(30)).await;
    let at = db
        .number("SELECT last_seen_at FROM users WHERE openid = 'oChat'")
        .await;
    app.post(&text("oChat", "二", "9102"), MessageMode::Plain, None)
        .await;
    assert_eq!(
        app.store.user("oChat").await.unwrap().unwrap().last_seen_at,
        at
    );
    // Nor does it touch the row: on PostgreSQL it neither locks nor waits for it (an upsert that finds
    // nothing to change still locks the row it conflicts with), so another transaction holding the
    // follower's row does not hold their messages up.
    let holds_rows = crate::BACKEND == crate::db::Backend::Postgres;
    let mut other = app.db.connect().await;
    if holds_rows {
        other
            .execute("BEGIN; SELECT 1 FROM users WHERE openid = 'oChat' FOR UPDATE")
            .await;
    }
    let answered = tokio::time::timeout(
        Duration::from_secs(5),
        app.post(&text("oChat", "二½", "9104"), MessageMode::Plain, None),
    )
    .await;
    if holds_rows {
        other.execute("ROLLBACK").await;
    }
    assert!(
        answered.is_ok(),
        "the message waited for the follower's row"
    );
    assert_eq!(
        app.store.user("oChat").await.unwrap().unwrap().last_seen_at,
        at
    );
    // Seen 61 s ago: the message moves it to now.
    db.execute(&seen_before(61)).await;
    app.post(&text("oChat", "三", "9103"), MessageMode::Plain, None)
        .await;
    let now = app.store.user("oChat").await.unwrap().unwrap().last_seen_at;
    assert!((now - unix_now()).abs() <= 2, "{now}");
    // An (un)subscribe is always recorded, whenever they were last seen.
    db.execute(&seen_before(10)).await;
    app.post(
        &event("oChat", "unsubscribe", unix_now()),
        MessageMode::Plain,
        None,
    )
    .await;
    assert!(!app.store.user("oChat").await.unwrap().unwrap().subscribed);
    assert_eq!(app.message_count().await, 5);
}
