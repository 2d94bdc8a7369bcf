//! Retention: messages and finished outbox jobs older than configured are deleted in batches; what a
//! queued reply still needs, and everything recent, stays.

use std::sync::Arc;

use wxportal::time::unix_now;
use wxportal::wechat::MessageMode;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread")]
async fn old_messages_and_finished_jobs_are_deleted_and_the_rest_kept() {
    let db = Arc::new(TestDb::fresh().await);
    let app = TestApp::spawn_in(db.clone(), &[]).await;
    for i in 0..3 {
        let (status, _) = app
            .post(
                &text(&format!("oRecent{i}"), "你好", &format!("8100{i}")),
                MessageMode::Plain,
                None,
            )
            .await;
        assert_eq!(status, 200);
    }
    app.stop().await;

    // 2,500 messages of 40 days ago (more than two batches), one of them still answered by a reply in
    // flight; finished jobs of 40 and of 2 days ago.
    let now = unix_now();
    let old = now - 40 * 86_400;
    let mut raw = db.connect().await;
    let rows: Vec<String> = (0..2500)
        .map(|i| {
            format!(
                "('old:{i}', 'oOld{}', 'gh', 'text', {old}, {old}, '{{}}', '<xml/>', '', FALSE)",
                i % 50
            )
        })
        .collect();
    // Their 50 senders, as the message writer would have kept them.
    raw.execute(&format!(
        "INSERT INTO users (openid, subscribed, first_seen_at, last_seen_at) VALUES {}",
        (0..50)
            .map(|i| format!("('oOld{i}', TRUE, {old}, {old})"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .await;
    for chunk in rows.chunks(500) {
        raw.execute(&format!(
            "INSERT INTO messages (dedup_key, openid, account, msg_type, created_at, received_at, fields,
                 raw_xml, reply_xml, encrypted) VALUES {}",
            chunk.join(", ")
        ))
        .await;
    }
    raw.execute(&format!(
        "INSERT INTO outbox (kind, openid, message_id, state, due_at, claimed_by, claimed_until, created_at)
         SELECT 'reply', openid, id, 'sending', {old}, 'elsewhere', {}, {old} FROM messages
         WHERE dedup_key = 'old:7';
         INSERT INTO outbox (kind, openid, state, due_at, created_at, finished_at) VALUES
             ('user_info', 'oOld1', 'done', {old}, {old}, {old}),
             ('user_info', 'oOld2', 'failed', {old}, {old}, {old}),
             ('user_info', 'oOld3', 'done', {old}, {old}, {});",
        now + 3600,
        now - 2 * 86_400
    ))
    .await;
    // Event deliveries: one done 40 days ago (it goes, and its event with it), one of 40 days ago still
    // queued and one done 2 days ago (both stay, with their events).
    raw.execute(&format!(
        "INSERT INTO endpoints (id, url, events, secret, created_at) VALUES (1, 'http://127.0.0.1:9/', 'message', 'whsec_x', {old});
         INSERT INTO events (id, uid, type, payload, created_at) VALUES
             (1, 'evt_old', 'message', '{{}}', {old}), (2, 'evt_queued', 'message', '{{}}', {old}),
             (3, 'evt_recent', 'message', '{{}}', {recent});
         INSERT INTO deliveries (event_id, endpoint_id, state, due_at, give_up_at, created_at, finished_at) VALUES
             (1, 1, 'done', {old}, {old}, {old}, {old}), (2, 1, 'queued', {future}, {future}, {old}, NULL),
             (3, 1, 'done', {recent}, {recent}, {recent}, {recent});",
        recent = now - 2 * 86_400,
        future = now + 86_400,
    ))
    .await;

    let app = TestApp::spawn_in(
        db.clone(),
        &[
            ("WXPORTAL_KEEP_MESSAGES_DAYS", "30"),
            ("WXPORTAL_KEEP_JOBS_DAYS", "7"),
        ],
    )
    .await;
    let pruned = || async { app.message_count().await == 4 };
    let mut done = false;
    for _ in 0..100 {
        if pruned().await {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(done, "{} messages left", app.message_count().await);
    let mut raw = db.connect().await;
    assert_eq!(
        raw.text("SELECT dedup_key FROM messages WHERE received_at < 1900000000 AND dedup_key LIKE 'old:%'")
            .await,
        "old:7",
        "the message a reply in flight answers is kept"
    );
    assert_eq!(
        raw.number("SELECT count(*) FROM outbox WHERE state = 'sending'")
            .await,
        1
    );
    assert_eq!(
        raw.text("SELECT openid FROM outbox WHERE state IN ('done', 'failed')")
            .await,
        "oOld3",
        "only the finished job of 2 days ago is kept"
    );
    assert_eq!(
        raw.number("SELECT count(*) FROM events WHERE uid IN ('evt_queued', 'evt_recent')")
            .await
            + raw.number("SELECT count(*) FROM events").await,
        4,
        "a finished delivery goes after the days kept, and its event with it"
    );
    assert_eq!(raw.number("SELECT count(*) FROM deliveries").await, 2);
    // The followers stay: only their old messages went.
    assert!(raw.number("SELECT count(*) FROM users").await >= 53);

    // The operator sees what is kept.
    let hash = wxportal::passwords::hash(crate::admin::PASSWORD).unwrap();
    assert!(app.store.create_admin("ops", &hash).await.unwrap());
    let (browser, _) = crate::admin::signed_in(&app).await;
    let dashboard = browser.get("/admin").await;
    assert!(
        dashboard.body.contains("消息保留 30 天"),
        "{}",
        dashboard.body
    );
    assert!(dashboard.body.contains("已完成的队列任务保留 7 天"));
}
