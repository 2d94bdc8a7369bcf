//! The outbox: slow rules answered late, retries and permanent failures, follower info on subscribe, kill -9.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_rule_answers_success_and_replies_through_the_outbox() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    add_rule(
        &browser,
        &csrf,
        "报价",
        "今日报价：<a href=\"{guide_url}\">查看</a> ]]> 😀",
        true,
    )
    .await;

    let push = text("oSlowFollower000000000000001", "报价", "9001");
    assert!(reply_to(&app, &push).await.is_none(), "answered success");
    assert!(eventually(5, || mock.sent().len() == 1).await);
    assert_eq!(
        mock.sent()[0],
        json!({"touser": "oSlowFollower000000000000001", "msgtype": "text",
               "text": {"content": format!("今日报价：<a href=\"{PUBLIC_URL}/\">查看</a> ]]> 😀")}})
    );
    // A retry of the same message is deduplicated: nothing is sent again.
    assert!(reply_to(&app, &push).await.is_none());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(mock.sent().len(), 1);

    let message = app.store.recent_messages(1).await.unwrap().remove(0);
    let detail = unescape(
        &browser
            .get(&format!("/admin/messages/{}", message.id))
            .await
            .body,
    );
    assert!(
        detail.contains("late reply") && detail.contains("done · 1 次"),
        "{detail}"
    );
    let outbox = unescape(&browser.get("/admin/outbox?state=done").await.body);
    assert!(outbox.contains("oSlowFollower000000000000001"), "{outbox}");
    assert!(outbox.contains("今日报价"), "{outbox}");
    // A normal rule still answers passively.
    add_rule(&browser, &csrf, "地址", "深圳", false).await;
    let reply = reply_to(&app, &text("oFast", "地址", "9002"))
        .await
        .unwrap();
    assert_eq!(reply.get("Content"), Some("深圳"));
}

#[tokio::test(flavor = "multi_thread")]
async fn outbox_retries_passing_failures_and_gives_up_on_permanent_ones() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    add_rule(&browser, &csrf, "慢", "稍后回复", true).await;

    // A 502 is retried after a pause; the message then goes out once.
    mock.script(CUSTOM_SEND, Scripted::Status(502));
    reply_to(&app, &text("oRetry", "慢", "9101")).await;
    assert!(eventually(8, || mock.sent().len() == 1).await);
    assert_eq!(mock.calls(CUSTOM_SEND), 2);

    // 45015 (the follower has not written in 48 hours) cannot succeed: given up, with the reason.
    mock.script(CUSTOM_SEND, Scripted::Errcode(45015));
    reply_to(&app, &text("oTooLate", "慢", "9102")).await;
    let failed = async {
        for _ in 0..100 {
            let page = unescape(&browser.get("/admin/outbox?state=failed").await.body);
            if page.contains("oTooLate") {
                return page;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the job was not given up");
    }
    .await;
    assert!(failed.contains("45015"), "{failed}");
    assert!(failed.contains("48 hours"), "{failed}");
    assert!(
        failed.contains("稍后回复"),
        "what would have been sent is kept"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(mock.calls(CUSTOM_SEND), 3, "not retried");
    assert_eq!(mock.sent().len(), 1);
    let dashboard = unescape(&browser.get("/admin").await.body);
    assert!(dashboard.contains("放弃 1"), "{dashboard}");
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribing_fetches_the_followers_info_in_the_background() {
    let (app, mock) = account().await;
    let openid = "oSubscriber00000000000000001";
    assert!(
        reply_to(&app, &event(openid, "subscribe", unix_now()))
            .await
            .is_some(),
        "the welcome is still passive"
    );
    let mut user = None;
    for _ in 0..100 {
        user = app.store.user(openid).await.unwrap();
        if user.as_ref().is_some_and(|u| u.info_fetched_at.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let user = user.unwrap();
    assert_eq!(user.unionid.as_deref(), Some(&*format!("uInfo{openid}")));
    assert_eq!(user.subscribe_time, Some(1_700_000_000));
    assert_eq!(user.remark.as_deref(), Some("VIP <b>"));
    assert_eq!(user.tags.as_deref(), Some("[128,2]"));
    assert_eq!(mock.calls("/cgi-bin/user/info"), 1);

    let (browser, _) = signed_in(&app).await;
    let detail = browser.get(&format!("/admin/users/{openid}")).await.body;
    assert!(!detail.contains("VIP <b>"), "markup stays text");
    assert!(unescape(&detail).contains("VIP <b>"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_appsecret_nothing_is_queued_for_follower_info() {
    let app = TestApp::spawn(&[]).await;
    reply_to(&app, &event("oNoSecret", "subscribe", unix_now())).await;
    assert!(app.store.list_jobs(None, 10).await.unwrap().is_empty());
    let (status, body) = jssdk_config(&app.client, &app.base, &format!("{PUBLIC_URL}/")).await;
    assert_eq!(status, 503, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_replies_survive_kill_9_and_only_a_cut_off_send_repeats() {
    let mock = MockWeChat::start().await;
    let db = TestDb::fresh().await;
    let vars = [
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
    ];
    let mut server = ServerProcess::start(&db, &vars).await;
    db.add_slow_rule().await;
    // The running server picks the rule up within its watch interval.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // The first eight sends hang in mid-call (the worker runs eight at a time); the rest wait in the
    // queue.
    for _ in 0..8 {
        mock.script(CUSTOM_SEND, Scripted::Delay(Duration::from_secs(30)));
    }
    let client = wxportal::upstream::client_builder().build().unwrap();
    for i in 0..12 {
        let push = text(
            &format!("oKill{i:023}"),
            &format!("慢 {i}"),
            &format!("77{i}"),
        );
        let (status, body) = post_to(&client, &server.base, &push).await.unwrap();
        assert_eq!((status, body.as_str()), (200, "success"));
    }
    assert!(eventually(5, || mock.sent().len() == 8).await);
    let cut_off: Vec<Value> = mock.sent().iter().map(|m| m["touser"].clone()).collect();
    server.kill_9();

    let restarted = ServerProcess::start(&db, &vars).await;
    // Queued jobs go out at once; the eight cut off in mid-call once their claims lapse (20 s).
    assert!(
        eventually(40, || mock.sent().len() == 20).await,
        "sent: {:?}\n{}",
        mock.sent(),
        restarted.log()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = mock.sent();
    assert_eq!(sent.len(), 20);
    for i in 0..12 {
        let to = json!(format!("oKill{i:023}"));
        let times = sent.iter().filter(|m| m["touser"] == to).count();
        let expected = if cut_off.contains(&to) { 2 } else { 1 };
        assert_eq!(times, expected, "{to}: {sent:?}");
    }
    let log = restarted.log();
    assert_eq!(
        log.matches("cut off in mid-call").count(),
        8,
        "each repeat is logged: {log}"
    );
    // Neither the AppSecret nor the token it bought appears in any log line.
    let token = mock.tokens_used(CUSTOM_SEND).pop().unwrap();
    for log in [log, server.log()] {
        assert!(!log.contains(APPSECRET));
        assert!(!log.contains(&format!("={token}")) && !log.contains(&format!("\"{token}\"")));
        assert!(
            !log.contains("收到"),
            "message bodies are not logged at info"
        );
    }
}
