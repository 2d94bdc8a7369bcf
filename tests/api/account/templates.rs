//! Template messages: listed from WeChat, filled in, previewed, sent to one follower (admin and CLI) or
//! to a thousand through one durable campaign (failures with their reasons, pause, cancel, kill -9),
//! and the TEMPLATESENDJOBFINISH event's status set on the send it names.

use std::collections::HashMap;

use super::*;
use wxportal::demo::wechat::templates::TEMPLATES;

const LIST: &str = "/cgi-bin/template/get_all_private_template";
const SEND: &str = "/cgi-bin/message/template/send";

fn shipped() -> &'static str {
    TEMPLATES[0].0
}

/// WeChat's TEMPLATESENDJOBFINISH event for `msgid`.
fn finished(to: &str, msgid: &str, status: &str) -> wxportal::wechat::push::Push {
    let mut push = event(to, "TEMPLATESENDJOBFINISH", unix_now());
    push.fields.truncate(1);
    push.fields.push(("MsgID".into(), msgid.into()));
    push.fields.push(("Status".into(), status.into()));
    push
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_is_listed_previewed_and_sent_to_one_follower_and_its_delivery_recorded() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    let follower = "oTemplate0000000000000000001";

    let page = browser
        .post_form("/admin/templates/refresh", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(mock.calls(LIST), 1);
    let list = unescape(&browser.get("/admin/templates").await.body);
    assert!(
        list.contains("订单发货通知") && list.contains("预约提醒"),
        "{list}"
    );

    let compose_path = format!("/admin/templates/{}", shipped());
    let form = unescape(
        &browser
            .get(&format!("{compose_path}?to={follower}"))
            .await
            .body,
    );
    for field in [
        "value.first",
        "value.keyword1",
        "value.keyword2",
        "value.remark",
    ] {
        assert!(
            form.contains(&format!("name=\"{field}\"")),
            "{field}: {form}"
        );
    }
    let fill = |action: &'static str, colour: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("action", action.into()),
            ("audience", "one".into()),
            ("to", follower.into()),
            ("value.first", "您的订单已发货 <b>".into()),
            ("color.first", colour.into()),
            ("value.keyword1", "A-1001".into()),
            ("value.keyword2", "顺丰".into()),
            ("url", "https://shop.example.com/o/1001".into()),
        ]
    };
    let post = |form: Vec<(&'static str, String)>| {
        let (browser, path) = (&browser, compose_path.clone());
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            browser.post_form(&path, &form).await
        }
    };

    // The preview shows the message as WeChat would, and queues nothing.
    let preview = post(fill("preview", "#FF0000")).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let shown = unescape(&preview.body);
    assert!(
        shown.contains("订单号：") && shown.contains("A-1001"),
        "{shown}"
    );
    assert!(preview.body.contains("color: #FF0000"), "{}", preview.body);
    assert!(!preview.body.contains("<b>"), "values stay text");
    // A bad colour, or no recipient, is named and nothing is queued.
    let bad = post(fill("send", "red")).await;
    assert_eq!(bad.status, 422);
    assert!(unescape(&bad.body).contains("colour must be #RRGGBB"));
    let mut nobody = fill("send", "");
    nobody.retain(|(k, _)| *k != "to");
    assert_eq!(post(nobody).await.status, 422);
    assert_eq!(app.rows("campaigns").await, 0);
    assert_eq!(mock.calls(SEND), 0);

    let sent = post(fill("send", "#FF0000")).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let campaign_page = sent.location.unwrap();
    assert!(eventually(5, || mock.templates_sent().len() == 1).await);
    assert_eq!(
        mock.templates_sent()[0],
        json!({"touser": follower, "template_id": shipped(), "url": "https://shop.example.com/o/1001",
               "data": {"first": {"value": "您的订单已发货 <b>", "color": "#FF0000"},
                        "keyword1": {"value": "A-1001"}, "keyword2": {"value": "顺丰"}}})
    );
    let msgid = async {
        for _ in 0..100 {
            let m = app
                .raw_db()
                .await
                .text("SELECT coalesce(max(msgid), '') FROM outbox WHERE kind = 'template'")
                .await;
            if !m.is_empty() {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no msgid recorded");
    }
    .await;
    let page = unescape(&browser.get(&campaign_page).await.body);
    assert!(page.contains("· done") && page.contains(&msgid), "{page}");

    // The finish event sets the send's final status.
    reply_to(&app, &finished(follower, &msgid, "failed:user block")).await;
    let page = unescape(&browser.get(&campaign_page).await.body);
    assert!(page.contains("failed:user block"), "{page}");
    // One token for all of it.
    assert_eq!(mock.calls(STABLE), 1);
}

/// Adds followers straight to the database: `n` who follow, `gone` who left.
async fn seed_followers(db: &TestDb, n: usize, gone: usize) -> Vec<String> {
    let openids: Vec<String> = (0..n)
        .map(|i| format!("oCampaign{i:019}"))
        .chain((0..gone).map(|i| format!("oGone{i:023}")))
        .collect();
    let rows: Vec<String> = openids
        .iter()
        .map(|o| format!("('{o}', TRUE, 1, 1)"))
        .collect();
    db.connect()
        .await
        .execute(&format!(
            "INSERT INTO users (openid, subscribed, first_seen_at, last_seen_at) VALUES {}",
            rows.join(", ")
        ))
        .await;
    openids
}

/// The campaign's state and its jobs by state, read from the database.
async fn campaign_state(db: &TestDb, id: i64) -> (String, HashMap<String, i64>) {
    let mut raw = db.connect().await;
    let state = raw
        .text(&format!("SELECT state FROM campaigns WHERE id = {id}"))
        .await;
    let mut counts = HashMap::new();
    for s in ["queued", "sending", "done", "failed", "cancelled"] {
        let n = raw
            .number(&format!(
                "SELECT count(*) FROM outbox WHERE campaign_id = {id} AND state = '{s}'"
            ))
            .await;
        counts.insert(s.to_owned(), n);
    }
    (state, counts)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_send_to_a_thousand_survives_failures_and_kill_9_and_reaches_each_follower_once() {
    let mock = MockWeChat::start().await;
    let db = TestDb::fresh().await;
    let vars = [
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
        ("WXPORTAL_TEMPLATE_RATE", "100"),
    ];
    let mut server = ServerProcess::start(&db, &vars).await;
    let openids = seed_followers(&db, 950, 50).await;
    // WeChat fails some calls: busy, a 502, a hang past the client's timeout.
    for fault in [
        Scripted::Errcode(-1),
        Scripted::Status(502),
        Scripted::Delay(Duration::from_secs(6)),
        Scripted::Status(503),
    ] {
        mock.script(SEND, fault);
    }

    // The operator sends to every follower (no filters) through the server's own form.
    let (store, client) = with_operator(&db).await;
    store.close().await;
    let browser = Browser::at(&server.base, client);
    let page = crate::admin::sign_in_with(&browser, "ops", crate::admin::PASSWORD).await;
    assert_eq!(page.status, 303);
    let csrf = browser.get("/admin").await.csrf();
    browser
        .post_form("/admin/templates/refresh", &[("csrf", &csrf)])
        .await;
    let page = browser
        .post_form(
            &format!("/admin/templates/{}", shipped()),
            &[
                ("csrf", &csrf),
                ("action", "send"),
                ("audience", "filters"),
                ("value.first", "双十二特卖"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let id: i64 = page
        .location
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let total = db
        .connect()
        .await
        .number(&format!("SELECT total FROM campaigns WHERE id = {id}"))
        .await;
    assert_eq!(total as usize, openids.len());

    assert!(eventually(30, || mock.templates_sent().len() >= 300).await);
    server.kill_9();
    let mut logs = server.log();
    let restarted = ServerProcess::start(&db, &vars).await;
    let mut done = false;
    for _ in 0..120 {
        if campaign_state(&db, id).await.0 == "done" {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    logs.push_str(&restarted.log());
    let (_, counts) = campaign_state(&db, id).await;
    assert!(done, "{counts:?}\n{logs}");
    assert_eq!(counts["done"], 950, "{counts:?}");
    assert_eq!(counts["failed"], 50, "{counts:?}");

    // Each follower at most once, but for sends cut off in mid-call (by the kill or the hang): each
    // of those is logged.
    let mut received: HashMap<String, usize> = HashMap::new();
    for m in mock.templates_sent() {
        *received
            .entry(m["touser"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(received.len(), 950);
    assert!(received.keys().all(|o| !o.starts_with("oGone")));
    let twice = received.values().filter(|n| **n > 1).count();
    let cut_off = logs.matches("cut off in mid-call").count();
    assert!(twice <= cut_off, "{twice} twice, {cut_off} logged\n{logs}");
    assert!(
        twice <= 9,
        "at most the eight in flight at the kill and the hang"
    );
    // The failures carry their reason.
    let reasons = db
        .connect()
        .await
        .number(&format!(
            "SELECT count(*) FROM outbox WHERE campaign_id = {id} AND state = 'failed' AND last_error LIKE '%43004%'"
        ))
        .await;
    assert_eq!(reasons, 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_is_paused_resumed_and_cancelled_from_its_page() {
    let (app, mock) = account_with(&[("WXPORTAL_TEMPLATE_RATE", "4")]).await;
    let (browser, csrf) = signed_in(&app).await;
    seed_followers(&app.db, 40, 0).await;
    browser
        .post_form("/admin/templates/refresh", &[("csrf", &csrf)])
        .await;
    let page = browser
        .post_form(
            &format!("/admin/templates/{}", shipped()),
            &[
                ("csrf", &csrf),
                ("action", "send"),
                ("audience", "filters"),
                ("subscribed", "yes"),
                ("value.first", "通知"),
            ],
        )
        .await;
    let campaign = page.location.unwrap();
    let act = |action: &'static str| {
        let (browser, csrf, path) = (&browser, csrf.clone(), format!("{campaign}/{action}"));
        async move { browser.post_form(&path, &[("csrf", &csrf)]).await.status }
    };
    assert!(eventually(10, || mock.templates_sent().len() >= 4).await);

    assert_eq!(act("pause").await, 303);
    assert_eq!(act("pause").await, 409, "already paused");
    // Sends already in hand finish (at most eight, at the campaign's pace of four a second).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let paused_at = mock.templates_sent().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        mock.templates_sent().len(),
        paused_at,
        "nothing goes out while paused"
    );
    assert!(unescape(&browser.get(&campaign).await.body).contains("· paused"));

    assert_eq!(act("resume").await, 303);
    assert!(eventually(10, || mock.templates_sent().len() >= paused_at + 4).await);
    assert_eq!(act("cancel").await, 303);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let cancelled_at = mock.templates_sent().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mock.templates_sent().len(), cancelled_at);
    assert!(cancelled_at < 40, "{cancelled_at}");
    let page = unescape(&browser.get(&campaign).await.body);
    assert!(page.contains("· cancelled"), "{page}");
    let id: i64 = campaign.rsplit('/').next().unwrap().parse().unwrap();
    let (state, counts) = campaign_state(&app.db, id).await;
    assert_eq!(state, "cancelled");
    assert_eq!(counts["done"] as usize, cancelled_at);
    assert_eq!(counts["done"] + counts["cancelled"], 40, "{counts:?}");
    assert_eq!(act("resume").await, 409, "a cancelled send stays cancelled");
    assert_eq!(act("explode").await, 400);
    let unique: std::collections::HashSet<String> = mock
        .templates_sent()
        .iter()
        .map(|m| m["touser"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(unique.len(), cancelled_at);
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_are_listed_and_sent_from_the_command_line_and_wait_reports_wechats_answer() {
    let (app, mock) = account().await;
    let dir = tempfile::tempdir().unwrap();
    let cli =
        |args: &[&str]| wxportal_command("template", args, &app.db.url, &mock.base, dir.path());
    let (ok, out, all) = cli(&["list"]);
    assert!(ok, "{all}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["template_id"], shipped());
    assert_eq!(
        listed[0]["fields"],
        json!(["first", "keyword1", "keyword2", "remark"])
    );

    let data = dir.path().join("data.json");
    std::fs::write(
        &data,
        r##"{"first": {"value": "已发货", "color": "#173177"}, "keyword1": "A-7"}"##,
    )
    .unwrap();
    let data = data.to_str().unwrap();
    let (ok, out, all) = cli(&[
        "send",
        "--to",
        "oCliTemplate",
        "--template",
        shipped(),
        "--data",
        data,
        "--url",
        "https://shop.example.com/7",
        "--wait",
    ]);
    assert!(ok, "{all}");
    let answer: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(answer["state"], "done");
    assert!(answer["msgid"].is_string(), "{answer}");
    assert_eq!(
        mock.templates_sent()[0],
        json!({"touser": "oCliTemplate", "template_id": shipped(), "url": "https://shop.example.com/7",
               "data": {"first": {"value": "已发货", "color": "#173177"}, "keyword1": {"value": "A-7"}}})
    );
    // WeChat refuses a follower who left: exit 1, WeChat's answer printed.
    let (ok, out, all) = cli(&[
        "send",
        "--to",
        "oGoneCli",
        "--template",
        shipped(),
        "--data",
        data,
        "--wait",
    ]);
    assert!(!ok);
    assert!(out.contains("\"failed\"") && all.contains("43004"), "{all}");
    // Without --wait: queued, printed at once.
    let (ok, out, _) = cli(&[
        "send",
        "--to",
        "oCliLater",
        "--template",
        shipped(),
        "--data",
        data,
    ]);
    assert!(ok);
    assert!(out.contains("\"job\""), "{out}");
    // Refused before anything is queued: an unknown template, a field it does not have.
    let (ok, _, all) = cli(&["send", "--to", "o1", "--template", "nope", "--data", data]);
    assert!(!ok && all.contains("no template"), "{all}");
    std::fs::write(dir.path().join("bad.json"), r#"{"colour": "x"}"#).unwrap();
    let bad = dir.path().join("bad.json");
    let (ok, _, all) = cli(&[
        "send",
        "--to",
        "o1",
        "--template",
        shipped(),
        "--data",
        bad.to_str().unwrap(),
    ]);
    assert!(!ok && all.contains("no field"), "{all}");
    assert_eq!(app.rows("campaigns").await, 3);
}
