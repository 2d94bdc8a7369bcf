//! Retries and durability: one processing per message, across restarts, racing writes and a log that starts over.

use super::*;

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
    let db = app.db.clone();
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

    let app = TestApp::spawn_in(db, &[]).await;
    // The stored answer comes back byte for byte, CreateTime included; nothing is stored twice.
    std::thread::sleep(Duration::from_millis(1100));
    let (status, again) = app.post_signed(&signed).await;
    assert_eq!(status, 200);
    assert_eq!(again, first);
    assert_eq!(app.message_count().await, 1);
}

/// A text message as the webhook would hand it to the store: key `key` from `openid`, answered `success`.
fn text_to_store(key: &str, openid: &str) -> wxportal::store::NewMessage {
    wxportal::store::NewMessage {
        dedup_key: key.into(),
        openid: openid.into(),
        account: "gh".into(),
        msg_type: "text".into(),
        event: None,
        msg_id: Some(key.into()),
        created_at: unix_now(),
        received_at: unix_now(),
        fields: "{}".into(),
        raw_xml: "<xml/>".into(),
        reply_xml: String::new(),
        encrypted: false,
        signature: None,
        signed_at: None,
        jobs: Vec::new(),
        scan: None,
        template_finished: None,
        tell: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_store_keeps_the_first_of_two_writes_racing_for_one_message() {
    let app = TestApp::spawn(&[]).await;
    let message = |reply: &str| wxportal::store::NewMessage {
        msg_id: Some("race".into()),
        created_at: 1,
        reply_xml: reply.into(),
        ..text_to_store("m:race", "oRace")
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
async fn on_postgresql_a_waiting_batch_holds_up_neither_the_next_nor_a_graceful_stop() {
    use sqlx::Connection;
    use wxportal::store::Recorded;
    if crate::BACKEND != Backend::Postgres {
        return; // SQLite's writer has one connection: its batches take turns.
    }
    let app = Arc::new(TestApp::spawn(&[]).await);
    let message = |key: &str| text_to_store(key, &format!("o{key}"));
    // Another session inserts the same message and keeps its transaction open: the writer's insert waits
    // to learn whether that row stays.
    let mut other = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query(
        "INSERT INTO messages (dedup_key, openid, account, msg_type, created_at, received_at, fields, raw_xml, reply_xml)
         VALUES ('m:held', 'om:held', 'gh', 'text', 1, 1, '{}', '<xml/>', '')",
    )
    .execute(&mut other)
    .await
    .unwrap();
    let held = tokio::spawn({
        let app = app.clone();
        async move { app.store.record_message(message("m:held")).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished());

    // The next message commits on the writer's other connection meanwhile.
    let next = tokio::time::timeout(
        Duration::from_secs(5),
        app.store.record_message(message("m:next")),
    )
    .await
    .expect("a message waits for no other batch");
    assert_eq!(next.unwrap(), Recorded::Inserted);

    // A graceful stop waits for the batch still committing.
    let stop = tokio::spawn({
        let app = app.clone();
        async move { app.store.close().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stop.is_finished(),
        "the stop did not wait for the held batch"
    );
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), stop)
        .await
        .expect("the stop returns once the held batch commits")
        .unwrap();
    assert_eq!(held.await.unwrap().unwrap(), Recorded::Inserted);
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE dedup_key IN ('m:held', 'm:next')")
            .fetch_one(&mut other)
            .await
            .unwrap();
    assert_eq!(stored, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_a_steady_stream_of_messages_the_write_ahead_log_starts_over() {
    use sqlx::Connection;
    if crate::BACKEND != Backend::Sqlite {
        return; // The write-ahead log and its checkpoints are SQLite's.
    }
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
                        msg_id: Some(format!("{w}{n}")),
                        raw_xml: format!("<xml><Content>{}</Content></xml>", "x".repeat(600)),
                        ..text_to_store(&format!("m:{w}:{n}"), &format!("oStream{w}"))
                    };
                    app.store.record_message(message).await.unwrap();
                    stored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();

    // The log's length in frames, sampled as the messages stream in: it must fall back at least once.
    let mut observer = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
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
