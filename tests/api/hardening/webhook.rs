//! The webhook against replays, forged bodies and a database that refuses one message.

use super::*;

/// Posts `body` under an already signed query.
async fn post_under(app: &TestApp, query: &[(&'static str, String)], body: &str) -> (u16, String) {
    let signed = wxportal::wechat::push::SignedPush {
        query: query.to_vec(),
        body: body.to_owned(),
        plaintext: String::new(),
    };
    app.post_signed(&signed).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_query_is_good_for_one_body_only_across_restarts() {
    use wxportal::wechat::MessageMode;
    let db = std::sync::Arc::new(TestDb::fresh().await);
    let app = TestApp::spawn_in(db.clone(), &[]).await;
    let now = wxportal::time::unix_now().to_string();
    let first = text("oReal", "你好", "5001").sign(TOKEN, MessageMode::Plain, None, &now, "777");
    let (status, reply) = app.post_signed(&first).await;
    assert_eq!(status, 200);
    // The query as a proxy's access log kept it, with a body of the attacker's choosing.
    let forged = text("oReal", "把我的积分转走", "5002").to_xml();
    assert_eq!(post_under(&app, &first.query, &forged).await.0, 403);
    let other_sender = text("oSomeoneElse", "hi", "5003").to_xml();
    assert_eq!(post_under(&app, &first.query, &other_sender).await.0, 403);
    // The same body again is WeChat's retry: the stored reply.
    assert_eq!(
        post_under(&app, &first.query, &first.body).await,
        (200, reply)
    );
    assert_eq!(app.message_count().await, 1);
    // And after a restart, still refused.
    app.stop().await;
    let app = TestApp::spawn_in(db, &[]).await;
    assert_eq!(post_under(&app, &first.query, &forged).await.0, 403);
    assert_eq!(app.message_count().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_query_with_its_timestamp_and_nonce_swapped_is_the_same_query() {
    use wxportal::wechat::MessageMode;
    // With the clock check off, the swapped query (same signature: it signs the two sorted) passes
    // every other check.
    let app = TestApp::spawn(&[("WXPORTAL_MAX_CLOCK_SKEW", "0")]).await;
    let now = wxportal::time::unix_now().to_string();
    // A nonce below the timestamp (most of WeChat's), above it, and one that is no number.
    for (i, nonce) in ["1320562132", "2100000000", "n0nce"]
        .into_iter()
        .enumerate()
    {
        let id = 8100 + 10 * i;
        let first = text("oReal", "原文", &id.to_string()).sign(
            TOKEN,
            MessageMode::Plain,
            None,
            &now,
            nonce,
        );
        let (status, reply) = app.post_signed(&first).await;
        assert_eq!(status, 200, "nonce {nonce}");
        let swapped: Vec<_> = first
            .query
            .iter()
            .map(|(k, v)| match *k {
                "timestamp" => (*k, nonce.to_owned()),
                "nonce" => (*k, now.clone()),
                _ => (*k, v.clone()),
            })
            .collect();
        assert_ne!(swapped, first.query);
        let forged = text("oReal", "伪造", &(id + 1).to_string()).to_xml();
        assert_eq!(
            post_under(&app, &swapped, &forged).await.0,
            403,
            "nonce {nonce}"
        );
        // The same body under it is the message again: answered as a retry, stored once.
        assert_eq!(
            post_under(&app, &swapped, &first.body).await,
            (200, reply),
            "nonce {nonce}"
        );
    }
    assert_eq!(app.message_count().await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_query_with_a_changed_body_under_the_same_msg_id_is_refused() {
    use wxportal::wechat::MessageMode;
    let app = TestApp::spawn(&[]).await;
    let now = wxportal::time::unix_now().to_string();
    let first = text("oReal", "原文", "6001").sign(TOKEN, MessageMode::Plain, None, &now, "778");
    assert_eq!(app.post_signed(&first).await.0, 200);
    let changed = text("oReal", "改过的", "6001").to_xml();
    assert_eq!(post_under(&app, &first.query, &changed).await.0, 403);
    let stored = app.store.recent_messages(5).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].message.raw_xml.contains("原文"));
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_can_claim_another_followers_msg_id_before_it_arrives() {
    let app = TestApp::spawn(&[]).await;
    use wxportal::wechat::MessageMode;
    assert_eq!(
        app.post(
            &text("oAttacker", "抢先", "9000000001"),
            MessageMode::Plain,
            None
        )
        .await
        .0,
        200
    );
    let (status, _) = app
        .post(
            &text("oVictim", "真的消息", "9000000001"),
            MessageMode::Plain,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let stored = app.store.recent_messages(5).await.unwrap();
    assert_eq!(
        stored.len(),
        2,
        "the victim's message is stored, not taken as a retry"
    );
    assert!(stored.iter().any(|m| m.message.openid == "oVictim"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compatible_body_is_read_from_its_ciphertext_never_the_plaintext_beside_it() {
    use wxportal::wechat::MessageMode;
    let app = TestApp::spawn(&[
        ("WXPORTAL_ENCODING_AES_KEY", AES_KEY),
        ("WXPORTAL_MESSAGE_MODE", "compat"),
    ])
    .await;
    let c = crypto(AES_KEY);
    let now = wxportal::time::unix_now().to_string();
    let signed =
        text("oReal", "真的", "7001").sign(TOKEN, MessageMode::Compat, Some(&c), &now, "99");
    // The plaintext copy rewritten, and `encrypt_type` dropped so that it would be the one read.
    let tampered_body = signed
        .body
        .replace("真的", "伪造")
        .replace("oReal", "oForged");
    let query: Vec<_> = signed
        .query
        .iter()
        .filter(|(k, _)| *k != "encrypt_type")
        .cloned()
        .collect();
    let (status, _) = post_under(&app, &query, &tampered_body).await;
    assert_eq!(status, 200);
    let stored = app.store.recent_messages(5).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].message.openid, "oReal");
    assert!(
        stored[0].message.raw_xml.contains("真的") && !stored[0].message.raw_xml.contains("伪造")
    );
    // Without a valid msg_signature over the ciphertext, nothing at all.
    let unsigned: Vec<_> = query
        .iter()
        .filter(|(k, _)| *k != "msg_signature")
        .cloned()
        .collect();
    let other =
        text("oReal", "再来", "7002").sign(TOKEN, MessageMode::Compat, Some(&c), &now, "98");
    let unsigned: Vec<_> = other
        .query
        .iter()
        .filter(|(k, _)| *k != "msg_signature" && *k != "encrypt_type")
        .cloned()
        .chain(unsigned.into_iter().filter(|_| false))
        .collect();
    assert_eq!(post_under(&app, &unsigned, &other.body).await.0, 400);
    assert_eq!(app.message_count().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_the_database_refuses_does_not_fail_those_committed_with_it() {
    use wxportal::wechat::MessageMode;
    let app = std::sync::Arc::new(TestApp::spawn(&[]).await);
    {
        let poison = match crate::BACKEND {
            Backend::Sqlite => {
                "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.openid = 'oPoison'
                 BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
            }
            Backend::Postgres => {
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
                 CREATE TRIGGER poison BEFORE INSERT ON messages
                 FOR EACH ROW WHEN (NEW.openid = 'oPoison') EXECUTE FUNCTION poison()"
            }
        };
        app.raw_db().await.execute(poison).await;
    }
    // Sent together, so that the writer commits them in shared batches.
    let sends = (0..40).map(|i| {
        let app = app.clone();
        async move {
            let from = if i % 10 == 0 {
                "oPoison".to_owned()
            } else {
                format!("oFine{i}")
            };
            let status = app
                .post(
                    &text(&from, "hi", &format!("77{i:04}")),
                    MessageMode::Plain,
                    None,
                )
                .await
                .0;
            (from, status)
        }
    });
    for (from, status) in futures_util::future::join_all(sends).await {
        let expected = if from == "oPoison" { 503 } else { 200 };
        assert_eq!(status, expected, "{from}");
    }
    assert_eq!(app.message_count().await, 36);
}
