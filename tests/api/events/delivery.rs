//! Delivery: every event type once with a verifiable signature, a receiver that fails, hangs and
//! recovers, order per follower, kill -9 in mid-delivery.

use std::collections::HashSet;

use serde_json::json;
use wxportal::time::unix_now;
use wxportal::wechat::push::Push;

use super::*;
use crate::admin::{click, reply_to};

/// `event` from `from` with extra fields after `Event`.
fn event_with(from: &str, name: &str, fields: &[(&str, &str)]) -> Push {
    let mut push = event(from, name, unix_now());
    push.fields.truncate(1);
    push.fields
        .extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    push
}

#[tokio::test(flavor = "multi_thread")]
async fn every_event_type_is_delivered_once_with_a_verifiable_signature() {
    let receiver = Receiver::start().await;
    let (app, mock) = crate::portal::portal().await;
    let (_, secret) = add_endpoint(&app.db, &receiver.url, "*");
    picked_up().await;

    let follower = "oEvents000000000000000000001";
    let text = text(follower, "你好 <b>&", "880001");
    reply_to(&app, &text).await;
    // WeChat's retry of the same message: deduplicated, and no second event.
    reply_to(&app, &text).await;
    reply_to(
        &app,
        &event_with(
            follower,
            "subscribe",
            &[("EventKey", "qrscene_spring"), ("Ticket", "t")],
        ),
    )
    .await;
    reply_to(
        &app,
        &event_with(follower, "SCAN", &[("EventKey", "spring"), ("Ticket", "t")]),
    )
    .await;
    reply_to(&app, &click(follower, "MENU_NEWS")).await;
    reply_to(
        &app,
        &event_with(
            follower,
            "TEMPLATESENDJOBFINISH",
            &[("MsgID", "4242"), ("Status", "success")],
        ),
    )
    .await;
    reply_to(
        &app,
        &event_with(follower, "unsubscribe", &[("EventKey", "")]),
    )
    .await;
    // An event no endpoint can ask for is not sent.
    reply_to(
        &app,
        &event_with(follower, "VIEW", &[("EventKey", "https://example.com/")]),
    )
    .await;
    let browser = Browser::new(&app);
    let page = crate::portal::authorize(&browser, &mock, follower, "?next=/me").await;
    assert_eq!(page.status, 302, "{page:?}");

    assert!(
        eventually(10, || receiver.accepted().len() == 7).await,
        "{:?}",
        receiver.received()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = receiver.received();
    assert_eq!(got.len(), 7, "each event once: {got:?}");
    // In the order they happened: one follower's events arrive in order.
    let types: Vec<&str> = got.iter().map(Received::event_type).collect();
    assert_eq!(
        types,
        [
            "message",
            "subscribe",
            "scan",
            "click",
            "template_finish",
            "unsubscribe",
            "oauth_signin"
        ]
    );
    let ids: HashSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 7, "an id per event");
    for r in &got {
        assert!(r.signed_by(&secret), "{r:?}");
        assert!(!r.signed_by(&wxportal::events::signature::new_secret()));
        assert!((r.timestamp - unix_now()).abs() < 30);
        assert_eq!(r.json["id"], r.id.as_str(), "the body names its webhook-id");
        assert_eq!(r.json["version"], 1);
        assert_eq!(r.json["data"]["openid"], follower);
        assert!(r.json["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    let message = &got[0].json["data"];
    assert_eq!(message["content"], "你好 <b>&");
    assert_eq!(message["msg_type"], "text");
    assert_eq!(message["msg_id"], "880001");
    let stored = app.store.recent_messages(10).await.unwrap();
    let text_row = stored
        .iter()
        .find(|m| m.message.msg_type == "text")
        .unwrap();
    assert_eq!(
        message["message_id"], text_row.id,
        "names the stored message"
    );
    assert_eq!(got[1].json["data"]["scene"], "spring");
    assert_eq!(got[2].json["data"]["scene"], "spring");
    assert_eq!(got[3].json["data"]["key"], "MENU_NEWS");
    assert_eq!(
        (
            &got[4].json["data"]["msgid"],
            &got[4].json["data"]["status"]
        ),
        (&json!("4242"), &json!("success"))
    );
    let signin = &got[6].json["data"];
    assert_eq!(signin["scope"], "snsapi_userinfo");
    assert!(signin["nickname"].as_str().unwrap().contains("小明🐼"));
    assert_eq!(signin["unionid"], "uUnion1");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_gets_only_the_types_it_asked_for_and_nothing_is_queued_for_nobody() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn(&[]).await;
    // No endpoint: a message writes no event.
    reply_to(&app, &text("oNobody", "hi", "1")).await;
    assert_eq!(app.rows("events").await, 0);

    add_endpoint(&app.db, &receiver.url, "subscribe,unsubscribe");
    picked_up().await;
    reply_to(&app, &text("oOnly", "hi", "2")).await;
    reply_to(&app, &event("oOnly", "subscribe", unix_now())).await;
    assert!(eventually(5, || receiver.accepted().len() == 1).await);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(receiver.received()[0].event_type(), "subscribe");
    assert_eq!(app.rows("events").await, 1, "the text wrote no event");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_then_hanging_receiver_gets_each_event_once_it_recovers_in_order_per_follower() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn(&[("WXPORTAL_EVENTS_TIMEOUT", "1")]).await;
    let (endpoint, secret) = add_endpoint(&app.db, &receiver.url, "message");
    picked_up().await;
    // The first attempt fails with a 500, the second hangs past the timeout; then it recovers.
    receiver.script(&[Answer::Status(500), Answer::Hang(Duration::from_secs(3))]);

    let a = "oOrderA000000000000000000001";
    let b = "oOrderB000000000000000000001";
    reply_to(&app, &text(a, "a1", "1001")).await;
    // a1's second attempt is in mid-call (a 2 s pause after the first); the next waits 4 s more.
    assert!(eventually(5, || receiver.received().len() == 2).await);
    reply_to(&app, &text(a, "a2", "1002")).await;
    reply_to(&app, &text(b, "b1", "1003")).await;
    reply_to(&app, &text(a, "a3", "1004")).await;

    assert!(
        eventually(30, || receiver.accepted().len() == 4).await,
        "{:?}",
        receiver.received()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let accepted = receiver.accepted();
    let contents: Vec<&str> = accepted
        .iter()
        .map(|r| r.json["data"]["content"].as_str().unwrap())
        .collect();
    // A's events in order, behind its first; B's did not wait for A's.
    let of_a: Vec<&str> = contents
        .iter()
        .copied()
        .filter(|c| c.starts_with('a'))
        .collect();
    assert_eq!(of_a, ["a1", "a2", "a3"], "{contents:?}");
    assert_eq!(contents[0], "b1", "{contents:?}");
    // a1 was attempted three times (500, cut off, accepted) under one webhook-id, each signed afresh.
    let received = receiver.received();
    let a1: Vec<&Received> = received
        .iter()
        .filter(|r| r.json["data"]["content"] == "a1")
        .collect();
    assert_eq!(a1.len(), 3, "{a1:?}");
    assert!(a1.iter().all(|r| r.id == a1[0].id && r.signed_by(&secret)));
    assert_eq!(
        receiver
            .accepted()
            .iter()
            .filter(|r| r.id == a1[0].id)
            .count(),
        1
    );
    assert!(a1.windows(2).all(|w| w[0].timestamp < w[1].timestamp));

    // The operator sees each delivery with its attempts and the last failure.
    let deliveries = app
        .store
        .deliveries(endpoint, None, None, 10)
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 4);
    let first = deliveries.iter().find(|d| d.uid == a1[0].id).unwrap();
    assert_eq!((first.attempts, first.state.as_str()), (3, "done"));
    assert_eq!(first.last_status, Some(200));
    let ep = app.store.endpoint(endpoint).await.unwrap().unwrap();
    assert!(
        ep.enabled && ep.failing_since.is_none(),
        "a success ends the streak"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn events_survive_kill_9_in_mid_delivery_and_only_the_cut_off_one_repeats() {
    let receiver = Receiver::start().await;
    let db = TestDb::fresh().await;
    let vars = [("WXPORTAL_EVENTS_TIMEOUT", "5")];
    let mut server = ServerProcess::start(&db, &vars).await;
    let (_, secret) = add_endpoint(&db, &receiver.url, "message");
    picked_up().await;
    // The first delivery hangs in the receiver while the server is killed.
    receiver.script(&[Answer::Hang(Duration::from_secs(2))]);
    let client = wxportal::upstream::client_builder().build().unwrap();
    let post = |base: String, i: usize| {
        let push = text(
            &format!("oKillEv{i:021}"),
            &format!("m{i}"),
            &format!("55{i}"),
        );
        let client = client.clone();
        async move { post_to(&client, &base, &push).await.unwrap().0 }
    };
    // The first message alone, so that its delivery is the one in mid-call.
    assert_eq!(post(server.base.clone(), 0).await, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill_9();
    // Answered before the kill: stored with its event. The others come after the restart.
    let restarted = ServerProcess::start(&db, &vars).await;
    server = restarted;
    for i in 1..6 {
        assert_eq!(post(server.base.clone(), i).await, 200);
    }
    // The new ones at once; the cut-off one once its claim lapses (timeout + 10 s).
    assert!(
        eventually(40, || {
            let ids: HashSet<String> = receiver.accepted().into_iter().map(|r| r.id).collect();
            ids.len() == 6
        })
        .await,
        "{:?}\n{}",
        receiver.received(),
        server.log()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = receiver.received();
    let first_id = received
        .iter()
        .find(|r| r.json["data"]["content"] == "m0")
        .unwrap()
        .id
        .clone();
    for r in &received {
        assert!(r.signed_by(&secret));
        let times = received.iter().filter(|x| x.id == r.id).count();
        let expected = if r.id == first_id { 2 } else { 1 };
        assert_eq!(times, expected, "{r:?}");
    }
    assert_eq!(
        server.log().matches("cut off in mid-call").count(),
        1,
        "the repeat is logged: {}",
        server.log()
    );
}
