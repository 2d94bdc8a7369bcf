//! Talking back to WeChat, against a mock upstream that counts calls: the shared access_token (one fetch
//! for many needs, across processes, renewed ahead, recovered after 40001), `-1` backoff, the menu, the
//! outbox (slow rules, permanent errors, kill -9), follower info on subscribe, and the JS-SDK config.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use sqlx::{Connection, SqliteConnection};
use wxportal::time::unix_now;
use wxportal::wechat::MessageMode;

use crate::admin::{reply_to, signed_in, unescape, with_admin};
use crate::helpers::*;
use crate::mock::{APPSECRET, MockWeChat, Scripted};

const STABLE: &str = "/cgi-bin/stable_token";
const TICKET: &str = "/cgi-bin/ticket/getticket";
const MENU_CREATE: &str = "/cgi-bin/menu/create";
const CUSTOM_SEND: &str = "/cgi-bin/message/custom/send";

/// A server with an admin, talking to a fresh mock.
async fn account() -> (TestApp, MockWeChat) {
    let mock = MockWeChat::start().await;
    let app = with_admin(&[
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", &mock.base),
    ])
    .await;
    (app, mock)
}

async fn jssdk_config(client: &reqwest::Client, base: &str, url: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}/jssdk/config"))
        .query(&[("url", url)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// SHA-1 as the JS-SDK documentation spells it out, written here independently of the server's code.
fn expected_signature(ticket: &str, config: &Value, url: &str) -> String {
    let plain = format!(
        "jsapi_ticket={ticket}&noncestr={}&timestamp={}&url={url}",
        config["nonceStr"].as_str().unwrap(),
        config["timestamp"].as_i64().unwrap()
    );
    hex::encode(Sha1::digest(plain.as_bytes()))
}

async fn stored_ticket(app: &TestApp) -> String {
    let mut db = SqliteConnection::connect(&app.database_url())
        .await
        .unwrap();
    sqlx::query_scalar("SELECT value FROM credentials WHERE kind = 'jsapi_ticket'")
        .fetch_one(&mut db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_concurrent_needs_cause_one_token_fetch() {
    let mock = MockWeChat::start().await;
    // Slow answers, so every need arrives while the one fetch is still running.
    mock.set_token_delay(Duration::from_millis(400));
    let app = TestApp::spawn(&[
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", &mock.base),
    ])
    .await;
    let page = format!("{PUBLIC_URL}/");
    let answers = futures_util::future::join_all(
        (0..100).map(|_| jssdk_config(&app.client, &app.base, &page)),
    )
    .await;
    assert_eq!(mock.calls(STABLE), 1, "one token fetch for 100 needs");
    assert_eq!(mock.calls(TICKET), 1, "one ticket fetch for 100 needs");
    let ticket = stored_ticket(&app).await;
    for (status, config) in answers {
        assert_eq!(status, 200, "{config}");
        assert_eq!(config["appId"], APPID);
        assert_eq!(
            config["signature"].as_str().unwrap(),
            expected_signature(&ticket, &config, &page)
        );
    }
    // The dashboard shows the token's age and the day's count.
    let (browser, _) = signed_in_new_admin(&app).await;
    let dashboard = browser.get("/admin").await.body;
    assert!(dashboard.contains("分钟后过期"), "{dashboard}");
    assert!(dashboard.contains("1 / 2000"), "{dashboard}");
}

/// `with_admin`'s admin on an app started without it.
async fn signed_in_new_admin(app: &TestApp) -> (Browser, String) {
    let hash = wxportal::passwords::hash("correct horse battery").unwrap();
    app.store.create_admin("ops", &hash).await.unwrap();
    signed_in(app).await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_server_processes_on_one_database_fetch_once() {
    let mock = MockWeChat::start().await;
    mock.set_token_delay(Duration::from_millis(500));
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
    ];
    // The first creates the database; then both run at once, each renewing ahead and serving needs.
    let first = ServerProcess::start(dir.path(), &vars).await;
    let second = ServerProcess::start(dir.path(), &vars).await;
    let client = wxportal::upstream::client_builder().build().unwrap();
    let page = format!("{PUBLIC_URL}/");
    let answers = futures_util::future::join_all((0..40).map(|i| {
        let base = if i % 2 == 0 {
            &first.base
        } else {
            &second.base
        };
        let (client, page) = (client.clone(), page.clone());
        async move { jssdk_config(&client, base, &page).await }
    }))
    .await;
    for (status, config) in &answers {
        assert_eq!(*status, 200, "{config}");
    }
    assert_eq!(mock.calls(STABLE), 1, "two processes, one token fetch");
    assert_eq!(mock.calls(TICKET), 1, "two processes, one ticket fetch");
    // Every call was made with that one token.
    let used = mock.tokens_used(TICKET);
    assert_eq!(used.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_renewed_ahead_of_expiry() {
    let mock = MockWeChat::start().await;
    // 242 s: due for renewal (4 minutes ahead) almost at once.
    mock.set_token_lifetime(242);
    let app = TestApp::spawn(&[
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", &mock.base),
    ])
    .await;
    assert!(eventually(5, || mock.calls(STABLE) == 1).await);
    let first = app.store.credential("access_token").await.unwrap();
    // Renewed by the background task, with nobody asking, and not in a hot loop.
    assert!(eventually(15, || mock.calls(STABLE) == 2).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mock.calls(STABLE), 2);
    let second = app.store.credential("access_token").await.unwrap();
    assert_ne!(first.value, second.value);
    assert!(second.expires_at > first.expires_at);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_is_renewed_once_and_the_call_tried_again() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "push"),
        ("b1_name", "今日"),
        ("b1_type", "click"),
        ("b1_value", "TODAY"),
    ];
    assert_eq!(browser.post_form("/admin/menu", &form).await.status, 200);
    // Another party invalidates the token (a classic cgi-bin/token fetch elsewhere, say).
    mock.revoke_account_tokens();
    let page = browser.post_form("/admin/menu", &form).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let used = mock.tokens_used(MENU_CREATE);
    assert_eq!(used.len(), 3, "ok, 40001, then ok with a new token");
    assert_eq!(used[0], used[1]);
    assert_ne!(used[1], used[2]);
    assert_eq!(mock.calls(STABLE), 2);

    // A second refusal in a row is not retried forever: one renewal, then the error is shown.
    mock.script(MENU_CREATE, Scripted::Errcode(40001));
    mock.script(MENU_CREATE, Scripted::Errcode(40001));
    let page = browser.post_form("/admin/menu", &form).await;
    assert_eq!(page.status, 502);
    assert!(unescape(&page.body).contains("40001"), "{}", page.body);
    assert_eq!(mock.calls(MENU_CREATE), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_wechat_is_retried_with_backoff() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "push"),
        ("b1_name", "官网"),
        ("b1_type", "view"),
        ("b1_value", "https://example.com/"),
    ];
    mock.script(MENU_CREATE, Scripted::Errcode(-1));
    mock.script(MENU_CREATE, Scripted::Errcode(-1));
    let started = Instant::now();
    let page = browser.post_form("/admin/menu", &form).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(mock.calls(MENU_CREATE), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "paused 250 ms, then 750 ms"
    );
    // Three busy answers in a row: given up, and said so.
    for _ in 0..3 {
        mock.script(MENU_CREATE, Scripted::Errcode(-1));
    }
    let page = browser.post_form("/admin/menu", &form).await;
    assert_eq!(page.status, 502);
    assert!(
        unescape(&page.body).contains("system busy"),
        "{}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_errors_are_shown_on_the_dashboard() {
    let mock = MockWeChat::start().await;
    mock.script(STABLE, Scripted::Errcode(45009));
    let app = with_admin(&[
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", &mock.base),
    ])
    .await;
    // The renewal at start-up met the quota.
    assert!(eventually(5, || mock.calls(STABLE) == 1).await);
    let (browser, _) = signed_in(&app).await;
    let dashboard = unescape(&browser.get("/admin").await.body);
    assert!(dashboard.contains("上次获取失败"), "{dashboard}");
    assert!(dashboard.contains("45009"), "{dashboard}");
    assert!(dashboard.contains("daily quota"), "{dashboard}");
    // The next need fetches successfully, and the error is cleared.
    let (status, _) = jssdk_config(&app.client, &app.base, &format!("{PUBLIC_URL}/")).await;
    assert_eq!(status, 200);
    let dashboard = browser.get("/admin").await.body;
    assert!(!dashboard.contains("上次获取失败"), "{dashboard}");
    assert!(dashboard.contains("2 / 2000"), "{dashboard}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_classic_token_api_is_used_when_configured() {
    let mock = MockWeChat::start().await;
    let app = TestApp::spawn(&[
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", &mock.base),
        ("WXPORTAL_ACCESS_TOKEN_API", "token"),
    ])
    .await;
    let (status, _) = jssdk_config(&app.client, &app.base, &format!("{PUBLIC_URL}/")).await;
    assert_eq!(status, 200);
    assert_eq!(mock.calls("/cgi-bin/token"), 1);
    assert_eq!(mock.calls(STABLE), 0);
}

/// Adds a keyword rule through the admin form.
async fn add_rule(browser: &Browser, csrf: &str, keyword: &str, content: &str, slow: bool) {
    let mut form = vec![
        ("csrf", csrf),
        ("match_mode", "exact"),
        ("keyword", keyword),
        ("reply_type", "text"),
        ("content", content),
        ("enabled", "on"),
    ];
    if slow {
        form.push(("slow", "on"));
    }
    let page = browser.post_form("/admin/replies/new", &form).await;
    assert_eq!(page.status, 303, "{}", page.body);
}

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
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
    ];
    let mut server = ServerProcess::start(dir.path(), &vars).await;
    {
        let mut db = SqliteConnection::connect(&format!(
            "sqlite://{}",
            dir.path().join("wxportal.db").display()
        ))
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO reply_rules (kind, position, match_mode, keyword, reply, slow, updated_at)
             VALUES ('keyword', 1, 'contains', '慢', '{\"type\":\"text\",\"content\":\"收到\"}', 1, 0);
             UPDATE settings SET value = value + 1 WHERE name = 'reply_rules_revision'",
        )
        .execute(&mut db)
        .await
        .unwrap();
    }
    // The running server picks the rule up within its watch interval.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // The first four sends hang in mid-call (the worker runs four at a time); the rest wait in the queue.
    for _ in 0..4 {
        mock.script(CUSTOM_SEND, Scripted::Delay(Duration::from_secs(30)));
    }
    let client = wxportal::upstream::client_builder().build().unwrap();
    for i in 0..10 {
        let push = text(
            &format!("oKill{i:023}"),
            &format!("慢 {i}"),
            &format!("77{i}"),
        );
        let signed = push.sign(
            TOKEN,
            MessageMode::Plain,
            None,
            &unix_now().to_string(),
            &wxportal::cli::send::nonce(),
        );
        let response = client
            .post(format!("{}/wechat", server.base))
            .query(&signed.query)
            .body(signed.body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.text().await.unwrap(), "success");
    }
    assert!(eventually(5, || mock.sent().len() == 4).await);
    let cut_off: Vec<Value> = mock.sent().iter().map(|m| m["touser"].clone()).collect();
    server.kill_9();

    let restarted = ServerProcess::start(dir.path(), &vars).await;
    // Queued jobs go out at once; the four cut off in mid-call once their claims lapse (20 s).
    assert!(
        eventually(40, || mock.sent().len() == 14).await,
        "sent: {:?}\n{}",
        mock.sent(),
        restarted.log()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = mock.sent();
    assert_eq!(sent.len(), 14);
    for i in 0..10 {
        let to = json!(format!("oKill{i:023}"));
        let times = sent.iter().filter(|m| m["touser"] == to).count();
        let expected = if cut_off.contains(&to) { 2 } else { 1 };
        assert_eq!(times, expected, "{to}: {sent:?}");
    }
    let log = restarted.log();
    assert_eq!(
        log.matches("cut off in mid-call").count(),
        4,
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

#[tokio::test(flavor = "multi_thread")]
async fn the_menu_is_checked_before_anything_is_sent_then_pushed_loaded_and_deleted() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    add_rule(&browser, &csrf, "歌曲", "今日歌曲", false).await;
    // Bind the rule to a CLICK key.
    let rules = app.store.reply_rules().await.unwrap();
    let rule = rules
        .iter()
        .find(|r| r.kind == wxportal::store::RuleKind::Keyword)
        .unwrap();
    let page = browser
        .post_form(
            &format!("/admin/replies/{}", rule.id),
            &[
                ("csrf", &csrf),
                ("match_mode", "exact"),
                ("keyword", "歌曲"),
                ("click_key", "V1001_TODAY_MUSIC"),
                ("reply_type", "text"),
                ("content", "今日歌曲"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);

    let bad = [
        ("csrf", csrf.as_str()),
        ("action", "push"),
        ("b1_name", "一二三四五六"),
        ("b1_type", "click"),
        ("b1_value", ""),
        ("b2_name", "网页"),
        ("b2_type", "view"),
        ("b2_value", "javascript:alert(1)"),
        ("b3_name", "小程序"),
        ("b3_type", "miniprogram"),
        ("b3_value", "https://example.com/"),
    ];
    let page = browser.post_form("/admin/menu", &bad).await;
    assert_eq!(page.status, 422);
    let body = unescape(&page.body);
    for problem in [
        "Button 1 「一二三四五六」: the name is 18 bytes; WeChat allows 16",
        "Button 1: a click button needs a key",
        "Button 2: the web address must be a full http:// or https:// address",
        "Button 3: a mini program button needs its AppID",
        "Button 3: a mini program button needs its page path",
    ] {
        assert!(body.contains(problem), "{problem} in {body}");
    }
    assert_eq!(mock.calls(MENU_CREATE), 0, "nothing sent");
    assert_eq!(mock.calls(STABLE), 1, "only the start-up renewal");
    // The draft keeps what was typed.
    assert!(
        browser
            .get("/admin/menu")
            .await
            .body
            .contains("javascript:alert(1)")
    );

    let good = [
        ("csrf", csrf.as_str()),
        ("action", "push"),
        ("b1_name", "今日歌曲"),
        ("b1_type", "click"),
        ("b1_value", "V1001_TODAY_MUSIC"),
        ("b2_name", "菜单"),
        ("b2s1_name", "搜索"),
        ("b2s1_type", "view"),
        ("b2s1_value", "http://www.soso.com/"),
        ("b2s2_name", "赞一下我们"),
        ("b2s2_type", "click"),
        ("b2s2_value", "V1001_GOOD"),
        ("b2s3_name", "扫码"),
        ("b2s3_type", "scancode_push"),
        ("b2s3_value", "rselfmenu_0_1"),
    ];
    let page = browser.post_form("/admin/menu", &good).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        mock.menu().unwrap(),
        json!({"button": [
            {"type": "click", "name": "今日歌曲", "key": "V1001_TODAY_MUSIC"},
            {"name": "菜单", "sub_button": [
                {"type": "view", "name": "搜索", "url": "http://www.soso.com/"},
                {"type": "click", "name": "赞一下我们", "key": "V1001_GOOD"},
                {"type": "scancode_push", "name": "扫码", "key": "rselfmenu_0_1"}]}]})
    );
    // CLICK keys show the rule that answers them, or that none does.
    let body = unescape(&page.body);
    assert!(body.contains("answered by"), "{body}");
    assert!(body.contains("no rule answers this key"), "{body}");
    // And the bound key answers with the rule.
    let reply = reply_to(&app, &crate::admin::click("oMenu", "V1001_TODAY_MUSIC"))
        .await
        .unwrap();
    assert_eq!(reply.get("Content"), Some("今日歌曲"));

    // Loading replaces the draft with what WeChat has.
    mock.set_menu(Some(
        json!({"button": [{"type": "view", "name": "控制台菜单", "url": "https://mp.weixin.qq.com/"}]}),
    ));
    let page = browser
        .post_form("/admin/menu/load", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("控制台菜单"));
    assert!(browser.get("/admin/menu").await.body.contains("控制台菜单"));

    // Deleting needs the box ticked.
    let page = browser
        .post_form("/admin/menu/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 422);
    assert!(mock.menu().is_some());
    let page = browser
        .post_form("/admin/menu/delete", &[("csrf", &csrf), ("confirm", "yes")])
        .await;
    assert_eq!(page.status, 200);
    assert!(mock.menu().is_none());
}

/// Runs `wxportal menu ARGS`: success, stdout, and stdout with stderr (the logs).
fn wxportal_menu(args: &[&str], dir: &std::path::Path, api: &str) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wxportal"))
        .arg("menu")
        .args(args)
        .env_clear()
        .env("WXPORTAL_TOKEN", TOKEN)
        .env("WXPORTAL_APPID", APPID)
        .env("WXPORTAL_APPSECRET", APPSECRET)
        .env("WXPORTAL_WECHAT_API_URL", api)
        .env(
            "WXPORTAL_DATABASE_URL",
            format!("sqlite://{}", dir.join("wxportal.db").display()),
        )
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), stdout, all)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_menu_is_managed_from_the_command_line() {
    let mock = MockWeChat::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"button":[{"type":"click","name":"这个名字实在太长了","key":"K"},{"type":"teleport","name":"x"}]}"#,
    )
    .unwrap();
    let (ok, _, out) = wxportal_menu(&["push", bad.to_str().unwrap()], dir.path(), &mock.base);
    assert!(!ok);
    assert!(out.contains("nothing was sent"), "{out}");
    assert!(out.contains("Button 1 「这个名字实在太长了」"), "{out}");
    assert!(out.contains("Button 2: the type \"teleport\""), "{out}");
    assert_eq!(mock.calls(STABLE), 0, "not even a token was fetched");

    let (ok, _, out) = wxportal_menu(&["push", "/no/such/file.json"], dir.path(), &mock.base);
    assert!(!ok && out.contains("cannot read"), "{out}");

    let good = dir.path().join("menu.json");
    std::fs::write(
        &good,
        r#"{"button":[{"type":"click","name":"今日歌曲","key":"V1001_TODAY_MUSIC"}]}"#,
    )
    .unwrap();
    let (ok, _, out) = wxportal_menu(&["push", good.to_str().unwrap()], dir.path(), &mock.base);
    assert!(ok, "{out}");
    assert_eq!(
        mock.menu().unwrap()["button"][0]["key"],
        "V1001_TODAY_MUSIC"
    );
    let (ok, shown, out) = wxportal_menu(&["show"], dir.path(), &mock.base);
    assert!(ok, "{out}");
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["button"][0]["name"], "今日歌曲");
    let (ok, _, out) = wxportal_menu(&["delete"], dir.path(), &mock.base);
    assert!(ok, "{out}");
    assert!(mock.menu().is_none());
    // Three commands, one token: it is kept in the database between them.
    assert_eq!(mock.calls(STABLE), 1);
    assert!(!out.contains(APPSECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jssdk_config_is_for_our_own_pages_only() {
    let (app, _mock) = account().await;
    let page = format!("{PUBLIC_URL}/me?from=singlemessage");
    let (status, config) =
        jssdk_config(&app.client, &app.base, &format!("{page}#wechat_redirect")).await;
    assert_eq!(status, 200, "{config}");
    let ticket = stored_ticket(&app).await;
    assert_eq!(
        config["signature"].as_str().unwrap(),
        expected_signature(&ticket, &config, &page),
        "signed without the fragment"
    );
    assert_eq!(config["nonceStr"].as_str().unwrap().len(), 16);
    assert!((config["timestamp"].as_i64().unwrap() - unix_now()).abs() < 5);
    for other in [
        "https://evil.example/",
        "http://portal.test.evil.example/",
        "https://portal.test/",
        "javascript:alert(1)",
        "",
    ] {
        let (status, body) = jssdk_config(&app.client, &app.base, other).await;
        assert_eq!(status, 400, "{other}: {body}");
        assert!(body["error"].is_string());
    }
    // The guide page uses it inside WeChat only.
    let guide = Browser::new(&app).get("/").await.body;
    assert!(guide.contains("/static/share.js"));
    assert!(guide.contains(&format!("data-image=\"{PUBLIC_URL}/static/logo.svg\"")));
    let desktop = app.client.get(app.url("/")).send().await.unwrap();
    assert!(!desktop.text().await.unwrap().contains("share.js"));
    let script = app
        .client
        .get(app.url("/static/share.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("/jssdk/config?url="));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_shows_late_replies_and_the_pushed_menu_in_its_chat() {
    let (base, _dir, banner) = spawn_demo().await;
    let password = demo_password(&banner);
    let browser = Browser::at(&base, crate::admin::browser_client());
    let page = crate::admin::sign_in_with(&browser, wxportal::demo::DEMO_ADMIN, &password).await;
    assert_eq!(page.status, 303);
    let csrf = browser.get("/admin").await.csrf();
    add_rule(&browser, &csrf, "慢", "这是稍后送达的回复", true).await;
    let page = browser
        .post_form(
            "/admin/menu",
            &[
                ("csrf", &csrf),
                ("action", "push"),
                ("b1_name", "营业时间"),
                ("b1_type", "click"),
                ("b1_value", "HOURS"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);

    let page = browser
        .post_form(
            "/_sim/chat",
            &[("follower", "0"), ("kind", "text"), ("content", "慢")],
        )
        .await;
    assert_eq!(page.status, 303);
    let mut chat = String::new();
    for _ in 0..100 {
        chat = browser.get("/_sim/chat").await.body;
        if chat.contains("这是稍后送达的回复") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(chat.contains("这是稍后送达的回复"), "{chat}");
    assert!(chat.contains("客服消息"), "{chat}");
    assert!(
        chat.contains("营业时间"),
        "the menu's CLICK button is offered"
    );
    // Nothing went wrong with WeChat's side on the dashboard.
    let dashboard = browser.get("/admin").await.body;
    assert!(!dashboard.contains("上次获取失败"), "{dashboard}");
    assert!(dashboard.contains("分钟后过期"), "{dashboard}");
}
