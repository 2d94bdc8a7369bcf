//! Several `wxportal serve` processes on one database behave as one instance does: three real
//! processes on one PostgreSQL database (run from `tests/postgres` only), a load balancer played by the
//! test sending each request wherever it likes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wxportal::wechat::push::Push;

use crate::account::add_rule;
use crate::helpers::*;
use crate::mock::{APPSECRET, MockWeChat};

const EXCHANGE: &str = "/sns/oauth2/access_token";
const PASSWORD: &str = "correct horse battery";

/// Three instances on one fresh database, talking to `mock`.
async fn three(db: &TestDb, mock: &MockWeChat) -> Vec<ServerProcess> {
    let vars = [
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
        ("WXPORTAL_WECHAT_OPEN_URL", "http://open.wechat.test"),
    ];
    // Started together: the migrations run once, under the lock the first one takes.
    let (a, b, c) = tokio::join!(
        ServerProcess::start(db, &vars),
        ServerProcess::start(db, &vars),
        ServerProcess::start(db, &vars)
    );
    vec![a, b, c]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_posted_to_three_instances_at_once_is_stored_once_and_answered_alike() {
    let mock = MockWeChat::start().await;
    let db = TestDb::fresh().await;
    let servers = three(&db, &mock).await;
    let client = wxportal::upstream::client_builder().build().unwrap();
    for i in 0..20 {
        let push = text(&format!("oThree{i:023}"), "你好", &format!("5000{i}"));
        let (a, b, c) = tokio::join!(
            post_to(&client, &servers[0].base, &push),
            post_to(&client, &servers[1].base, &push),
            post_to(&client, &servers[2].base, &push)
        );
        let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
        assert_eq!(a.0, 200, "{a:?}");
        assert!(a.1.contains("<xml>"), "the default rule answers: {a:?}");
        assert_eq!(a, b, "message {i}");
        assert_eq!(a, c, "message {i}");
        // WeChat's retry, landing on yet another instance: the stored reply, byte for byte.
        let retry = post_to(&client, &servers[i % 3].base, &push).await.unwrap();
        assert_eq!(retry, a, "retry of message {i}");
    }
    let mut raw = db.connect().await;
    assert_eq!(raw.number("SELECT count(*) FROM messages").await, 20);
    assert_eq!(
        raw.number("SELECT count(DISTINCT dedup_key) FROM messages")
            .await,
        20
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_started_on_one_instance_finishes_on_another_and_its_session_works_on_all() {
    let mock = MockWeChat::start().await;
    let db = TestDb::fresh().await;
    let servers = three(&db, &mock).await;
    let client = wxportal::upstream::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let on = |i: usize| Browser::at(&servers[i].base, client.clone());
    let first = on(0);
    let state = first.start_login("").await;
    let pending = first.cookie();
    let code = mock.issue_code("oBalanced", "snsapi_userinfo");
    // The callback lands on the second instance, the same code again on the third (a double load).
    let second = on(1);
    second.set_cookie(first.cookie());
    let third = on(2);
    third.set_cookie(first.cookie());
    let (done, again) = tokio::join!(
        second.callback(&code, &state),
        third.callback(&code, &state)
    );
    assert_eq!(done.location.as_deref(), Some("/me"), "{done:?}");
    assert_eq!(again.location.as_deref(), Some("/me"), "{again:?}");
    assert_eq!(mock.calls(EXCHANGE), 1, "a code is exchanged once");
    // The session made there is valid on every instance.
    for browser in [&first, &second, &third] {
        browser.set_cookie(second.cookie());
        let me = browser.get("/me").await;
        assert_eq!(me.status, 200, "{me:?}");
        assert!(me.body.contains("oBalanced"));
    }
    // The state is spent everywhere: another code with it is refused, and nobody is exchanged for it.
    let other = mock.issue_code("oIntruder", "snsapi_userinfo");
    let replay = on(0);
    replay.set_cookie(pending);
    let replay = replay.callback(&other, &state).await;
    assert_ne!(replay.location.as_deref(), Some("/me"), "{replay:?}");
    assert_eq!(mock.calls(EXCHANGE), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_edited_on_one_instance_answers_on_every_instance_within_two_seconds() {
    let mock = MockWeChat::start().await;
    let db = TestDb::fresh().await;
    let servers = three(&db, &mock).await;
    let (store, client) = with_operator(&db).await;
    let admin = Browser::at(&servers[0].base, client.clone());
    let page = crate::admin::sign_in_with(&admin, "ops", PASSWORD).await;
    assert_eq!(page.status, 303, "{page:?}");
    let csrf = admin.get("/admin").await.csrf();
    add_rule(&admin, &csrf, "营业时间", "每天 9:00–18:00", false).await;
    let edited = Instant::now();
    let mut answered: HashSet<usize> = HashSet::new();
    let mut n = 0;
    while answered.len() < 3 && edited.elapsed() < Duration::from_secs(3) {
        for (i, server) in servers.iter().enumerate() {
            n += 1;
            let push = text(&format!("oRules{i:023}"), "营业时间", &format!("6100{n}"));
            let (_, body) = post_to(&client, &server.base, &push).await.unwrap();
            if body.contains("每天 9:00–18:00") && answered.insert(i) {
                println!(
                    "instance {i} answers with the new rule after {:?}",
                    edited.elapsed()
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answered.len(), 3, "answering: {answered:?}");
    assert!(edited.elapsed() < Duration::from_millis(2500));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_sign_ins_are_counted_across_instances() {
    let mock = MockWeChat::start().await;
    let db = TestDb::fresh().await;
    let servers = three(&db, &mock).await;
    let (store, client) = with_operator(&db).await;
    // Five failures, spread over the three instances, reach the per-account limit on every one.
    for i in 0..5 {
        let browser = Browser::at(&servers[i % 3].base, client.clone());
        let page = crate::admin::sign_in_with(&browser, "ops", "wrong password!").await;
        assert_eq!(page.status, 401, "{page:?}");
    }
    for server in &servers {
        let browser = Browser::at(&server.base, client.clone());
        let page = crate::admin::sign_in_with(&browser, "ops", PASSWORD).await;
        assert_eq!(page.status, 429, "{page:?}");
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_of_one_instance_loses_no_answered_message_and_no_queued_reply() {
    let mock = MockWeChat::start().await;
    let db = TestDb::fresh().await;
    let mut servers = three(&db, &mock).await;
    // A slow rule: every message queues a reply in the outbox, which the instances share.
    db.add_slow_rule().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let client = wxportal::upstream::client_builder().build().unwrap();
    const MESSAGES: usize = 90;
    let pushes: Arc<Vec<Push>> = Arc::new(
        (0..MESSAGES)
            .map(|i| {
                text(
                    &format!("oStream{i:022}"),
                    &format!("慢 {i}"),
                    &format!("7100{i}"),
                )
            })
            .collect(),
    );
    // Three senders, round robin over the instances; the third instance dies a third of the way in.
    // A message it did not answer is retried on the next instance, as WeChat retries.
    let senders: Vec<_> = (0..3)
        .map(|s| {
            let (client, bases, pushes) = (client.clone(), bases.clone(), pushes.clone());
            tokio::spawn(async move {
                let mut answered = Vec::new();
                for i in (s..MESSAGES).step_by(3) {
                    let mut target = i % 3;
                    loop {
                        match post_to(&client, &bases[target], &pushes[i]).await {
                            Some((200, body)) => {
                                assert_eq!(body, "success");
                                answered.push(i);
                                break;
                            }
                            _ => target = (target + 1) % 3,
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    servers[2].kill_9();
    let mut answered = Vec::new();
    for sender in senders {
        answered.extend(sender.await.unwrap());
    }
    assert_eq!(answered.len(), MESSAGES);

    // Every answered message is stored exactly once.
    let mut raw = db.connect().await;
    assert_eq!(
        raw.number("SELECT count(*) FROM messages").await,
        MESSAGES as i64
    );
    // Every queued reply is delivered: at once by the living, or (a job the killed instance held) once
    // its claim lapses. Only a send cut off in mid-call may arrive twice.
    let everyone = |sent: &[Value]| {
        let to: HashSet<String> = sent
            .iter()
            .map(|m| m["touser"].as_str().unwrap().to_owned())
            .collect();
        to.len() == MESSAGES
    };
    assert!(
        eventually(45, || everyone(&mock.sent())).await,
        "{} of {MESSAGES} delivered\n{}",
        mock.sent().len(),
        servers[0].log()
    );
    let mut per_follower: HashMap<String, usize> = HashMap::new();
    for m in mock.sent() {
        *per_follower
            .entry(m["touser"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let repeated = per_follower.values().filter(|n| **n > 1).count();
    assert!(repeated <= 4, "{repeated} followers got their reply twice");
    // Each job is recorded done once WeChat has answered its send (the mock has seen it a moment
    // before); a job whose send the killed instance made but never recorded is sent again once its claim
    // lapses, and recorded then.
    let mut unfinished = -1;
    for _ in 0..900 {
        unfinished = raw
            .number("SELECT count(*) FROM outbox WHERE state <> 'done'")
            .await;
        if unfinished == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        unfinished,
        0,
        "jobs not done: {}\n{}",
        raw.text(
            "SELECT string_agg(concat_ws(' ', id, state, claimed_by, claimed_until, due_at, last_error), '; ')
             FROM outbox WHERE state <> 'done'"
        )
        .await,
        servers[0].log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_from_two_instances_commit_in_groups_and_a_lost_writer_connection_is_replaced() {
    let mock = MockWeChat::start().await;
    let db = TestDb::fresh().await;
    let vars = [("WXPORTAL_WECHAT_API_URL", mock.base.as_str())];
    let (a, b) = tokio::join!(
        ServerProcess::start(&db, &vars),
        ServerProcess::start(&db, &vars)
    );
    let bases = [a.base.clone(), b.base.clone()];
    let client = wxportal::upstream::client_builder().build().unwrap();
    let mut raw = db.connect().await;

    // 400 messages at once, from 40 followers (so that the two instances' groups share senders' rows),
    // each posted to both instances: stored once, every try answered alike.
    const MESSAGES: usize = 400;
    let tries: Vec<_> = (0..MESSAGES)
        .map(|i| {
            let client = client.clone();
            let bases = bases.clone();
            tokio::spawn(async move {
                let push = text(
                    &format!("oGroup{:022}", i % 40),
                    "你好",
                    &format!("8100{i}"),
                );
                let (x, y) = tokio::join!(
                    post_to(&client, &bases[i % 2], &push),
                    post_to(&client, &bases[(i + 1) % 2], &push)
                );
                (x.unwrap(), y.unwrap())
            })
        })
        .collect();
    for t in tries {
        let (x, y) = t.await.unwrap();
        assert_eq!(x.0, 200, "{x:?}");
        assert_eq!(x, y);
    }
    assert_eq!(
        raw.number("SELECT count(*) FROM messages").await,
        MESSAGES as i64
    );
    assert_eq!(
        raw.number("SELECT count(DISTINCT openid) FROM users").await,
        40
    );
    // Each row's xmin names the transaction that inserted it: one per message would be 400. The writers
    // commit together what arrives while they commit.
    let transactions = raw
        .number("SELECT count(DISTINCT xmin::text) FROM messages")
        .await;
    assert!(
        transactions < MESSAGES as i64 / 2,
        "{transactions} transactions for {MESSAGES} messages"
    );

    // The database closes every writer connection of both instances (a restart, an administrator): the
    // next messages are stored and answered all the same, through new ones.
    raw.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'wxportal writer' AND datname = current_database()",
    )
    .await;
    // Each instance's writer commits on two connections: enough messages, one after another, that each
    // of them meets a cut connection.
    for (i, base) in bases.iter().enumerate() {
        for j in 0..4 {
            let push = text(&format!("oCut{i:020}{j:04}"), "你好", &format!("820{i}{j}"));
            let (status, body) = post_to(&client, base, &push).await.unwrap();
            assert_eq!(status, 200, "{body}");
        }
    }
    assert_eq!(
        raw.number("SELECT count(*) FROM messages WHERE openid LIKE 'oCut%'")
            .await,
        8
    );
    assert_eq!(
        raw.number(
            "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = 'wxportal writer' AND datname = current_database()"
        )
        .await,
        4
    );
}
