//! Followers imported from WeChat: 50,000 followers walked with `user/get` and `user/info/batchget`, a
//! run killed midway and resumed from its cursor, quota errors, who left marked, tags read, set and used
//! as filters and as a campaign's audience.

use std::process::{Child, Command, Stdio};

use super::*;

const USER_GET: &str = "/cgi-bin/user/get";
const BATCHGET: &str = "/cgi-bin/user/info/batchget";
const FOLLOWERS: usize = 50_000;

fn roster(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("oSync{i:023}")).collect()
}

/// `wxportal followers ARGS` against the mock, at `rate` calls a second.
fn followers_command(db: &TestDb, mock: &MockWeChat, rate: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wxportal"));
    cmd.arg("followers")
        .args(args)
        .env_clear()
        .env("WXPORTAL_TOKEN", TOKEN)
        .env("WXPORTAL_APPID", APPID)
        .env("WXPORTAL_APPSECRET", APPSECRET)
        .env("WXPORTAL_WECHAT_API_URL", &mock.base)
        .env("WXPORTAL_DATABASE_URL", &db.url)
        .env("WXPORTAL_SYNC_RATE", rate)
        .current_dir(db.dir.path());
    cmd
}

/// Runs a `followers` command to its end: success and what it printed (stdout, then stderr).
fn run(db: &TestDb, mock: &MockWeChat, rate: &str, args: &[&str]) -> (bool, String) {
    let out = followers_command(db, mock, rate, args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn report(text: &str) -> Value {
    let line = text
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{text}"));
    serde_json::from_str(line).unwrap()
}

/// The server's sync run once it is done, waiting up to ten seconds.
async fn finished_sync(app: &TestApp) -> Option<wxportal::store::SyncRun> {
    for _ in 0..100 {
        let run = app.store.follower_sync().await.unwrap();
        if run.as_ref().is_some_and(|r| r.state.as_str() == "done") {
            return run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.connect().await.number(sql).await
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_thousand_followers_are_imported_and_those_who_left_marked() {
    let (app, mock) = account().await;
    mock.set_roster(roster(FOLLOWERS));
    mock.add_tag(2, "星标");
    mock.add_tag(128, "老客户");
    // Known before: one follower on the roster, one who left since.
    reply_to(&app, &event(&roster(1)[0], "subscribe", unix_now() - 100)).await;
    reply_to(
        &app,
        &event(
            "oLeftLongAgo0000000000000001",
            "subscribe",
            unix_now() - 100,
        ),
    )
    .await;

    let (ok, out) = run(&app.db, &mock, "1000", &["sync"]);
    assert!(ok, "{out}");
    let r = report(&out);
    assert_eq!(
        (
            &r["total"],
            &r["seen"],
            &r["unfollowed"],
            &r["resumed"],
            &r["tags"]
        ),
        (
            &json!(FOLLOWERS),
            &json!(FOLLOWERS),
            &json!(1),
            &json!(false),
            &json!(2)
        ),
        "{out}"
    );
    assert_eq!(mock.calls(USER_GET), FOLLOWERS / 10_000 + 1);
    assert_eq!(mock.calls(BATCHGET), FOLLOWERS / 100);
    assert_eq!(
        count(&app.db, "SELECT count(*) FROM users WHERE subscribed").await,
        FOLLOWERS as i64
    );
    let left = app
        .store
        .user("oLeftLongAgo0000000000000001")
        .await
        .unwrap()
        .unwrap();
    assert!(!left.subscribed, "not on WeChat's list any more");
    let one = app
        .store
        .user(&roster(FOLLOWERS)[43_210])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.remark.as_deref(), Some("VIP <b>"));
    assert_eq!(one.tags.as_deref(), Some("[128,2]"));
    assert_eq!(one.subscribe_time, Some(1_700_000_000));
    assert!(one.unionid.is_some());

    // The operator sees the sync, filters by tag, and pages through.
    let (browser, csrf) = signed_in(&app).await;
    let page = unescape(&browser.get("/admin/users?tag=128").await.body);
    assert!(
        page.contains("老客户 (0)") && page.contains("1000+"),
        "{page}"
    );
    assert!(page.contains("上次同步"), "{page}");
    // Tagging one follower on WeChat: only they match the new tag, and a campaign can target them.
    mock.add_tag(7, "试用");
    let (ok, out) = run(&app.db, &mock, "1000", &["tags"]);
    assert!(ok && out.contains("试用"), "{out}");
    let openid = &roster(3)[2];
    let tagged = browser
        .post_form(
            &format!("/admin/users/{openid}/tag"),
            &[("csrf", &csrf), ("tag", "7")],
        )
        .await;
    assert_eq!(tagged.status, 303, "{tagged:?}");
    assert_eq!(mock.tagged(openid), [7]);
    let page = unescape(&browser.get("/admin/users?tag=7").await.body);
    assert!(page.contains("id=\"matching\">1<"), "{page}");
    assert!(page.contains(openid.as_str()));
    // A template campaign to the tag reaches that one follower.
    browser
        .post_form("/admin/templates/refresh", &[("csrf", &csrf)])
        .await;
    let template = wxportal::demo::wechat::templates::TEMPLATES[0].0;
    let sent = browser
        .post_form(
            &format!("/admin/templates/{template}"),
            &[
                ("csrf", &csrf),
                ("action", "send"),
                ("audience", "filters"),
                ("tag", "7"),
                ("value.first", "试用到期提醒"),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert!(eventually(10, || mock.templates_sent().len() == 1).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let templates = mock.templates_sent();
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0]["touser"], openid.as_str());
    // An unknown tag: WeChat refuses, nothing recorded.
    let refused = browser
        .post_form(
            &format!("/admin/users/{openid}/tag"),
            &[("csrf", &csrf), ("tag", "999")],
        )
        .await;
    assert_eq!(refused.status, 502, "{refused:?}");
    assert!(unescape(&refused.body).contains("45159"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_killed_midway_resumes_from_its_cursor() {
    let (app, mock) = account().await;
    mock.set_roster(roster(FOLLOWERS));
    // 100 calls a second: the whole run takes five seconds.
    let mut child: Child = followers_command(&app.db, &mock, "100", &["sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = 0;
    for _ in 0..200 {
        seen = count(&app.db, "SELECT coalesce(max(seen), 0) FROM follower_sync").await;
        if seen >= 15_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!((15_000..FOLLOWERS as i64).contains(&seen), "{seen}");
    let calls_before = mock.calls(BATCHGET);
    let cursor = app
        .raw_db()
        .await
        .text("SELECT cursor FROM follower_sync")
        .await;
    assert!(!cursor.is_empty(), "the cursor was kept");

    // While its process seems alive, another run does not start alongside it.
    let (ok, out) = run(&app.db, &mock, "1000", &["sync"]);
    assert!(!ok && out.contains("running in another process"), "{out}");
    // A minute later it is known dead, and the next run takes over where it stopped.
    app.raw_db()
        .await
        .execute(&format!(
            "UPDATE follower_sync SET heartbeat_at = {}",
            unix_now() - 120
        ))
        .await;
    let (ok, out) = run(&app.db, &mock, "1000", &["sync"]);
    assert!(ok, "{out}");
    let r = report(&out);
    assert_eq!(r["resumed"], true);
    assert_eq!(r["seen"], FOLLOWERS);
    assert_eq!(r["unfollowed"], 0);
    // Resumed at the page it stopped in: at most one page (100 batches) asked again.
    let again = mock.calls(BATCHGET) - calls_before;
    assert!(
        again <= FOLLOWERS / 100 - calls_before + 100 && again < FOLLOWERS / 100,
        "{calls_before} then {again}"
    );
    assert_eq!(
        count(&app.db, "SELECT count(*) FROM users WHERE subscribed").await,
        FOLLOWERS as i64
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_errors_stop_the_sync_resumably_and_slow_downs_are_waited_out() {
    let (app, mock) = account().await;
    mock.set_roster(roster(2_000));
    // "Called too often" twice: paused and tried again, the run completes.
    mock.script(BATCHGET, Scripted::Errcode(45011));
    mock.script(BATCHGET, Scripted::Errcode(45011));
    let (ok, out) = run(&app.db, &mock, "1000", &["sync"]);
    assert!(ok, "{out}");
    assert_eq!(report(&out)["seen"], 2_000);
    assert_eq!(mock.calls(BATCHGET), 20 + 2);

    // The daily quota: the run stops, says why, and the next one resumes.
    mock.set_roster(roster(25_000));
    for _ in 0..3 {
        mock.script(USER_GET, Scripted::Delay(Duration::ZERO));
    }
    let (ok, out) = run(&app.db, &mock, "1000", &["sync"]);
    assert!(ok, "{out}");
    for _ in 0..150 {
        mock.script(BATCHGET, Scripted::Delay(Duration::ZERO));
    }
    mock.script(BATCHGET, Scripted::Errcode(45009));
    let (ok, out) = run(&app.db, &mock, "1000", &["sync"]);
    assert!(!ok && out.contains("daily quota"), "{out}");
    let run_row = app.store.follower_sync().await.unwrap().unwrap();
    assert_eq!(run_row.state.as_str(), "failed");
    assert!(run_row.last_error.unwrap().contains("45009"));
    assert_eq!(
        run_row.seen, 15_000,
        "the batches before the quota are kept"
    );
    let (browser, _) = signed_in(&app).await;
    let page = unescape(&browser.get("/admin/users").await.body);
    assert!(
        page.contains("同步中断") && page.contains("45009"),
        "{page}"
    );
    let (ok, out) = run(&app.db, &mock, "1000", &["sync"]);
    assert!(ok, "{out}");
    let r = report(&out);
    assert_eq!((&r["resumed"], &r["seen"]), (&json!(true), &json!(25_000)));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_area_starts_a_sync_that_its_answer_already_shows_running() {
    let (app, mock) = account_with(&[("WXPORTAL_SYNC_RATE", "1000")]).await;
    mock.set_roster(roster(300));
    // WeChat slow to give the first page: the run is still at it when the list comes back.
    mock.script(USER_GET, Scripted::Delay(Duration::from_secs(2)));
    let (browser, csrf) = signed_in(&app).await;
    let browser = std::sync::Arc::new(browser);
    // Another session holds the database's writes for a moment: whenever the answer comes, the list
    // it leads back to shows the run.
    let mut other = app.db.connect().await;
    other
        .execute(match crate::BACKEND {
            crate::db::Backend::Sqlite => "BEGIN IMMEDIATE",
            crate::db::Backend::Postgres => "BEGIN; LOCK TABLE follower_sync IN EXCLUSIVE MODE",
        })
        .await;
    let post = {
        let (browser, csrf) = (std::sync::Arc::clone(&browser), csrf.clone());
        tokio::spawn(async move {
            browser
                .post_form("/admin/users/sync", &[("csrf", &csrf)])
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    if post.is_finished() {
        let page = unescape(&browser.get("/admin/users").await.body);
        assert!(page.contains("id=\"sync-status\">同步中"), "{page}");
    }
    other.execute("ROLLBACK").await;
    let answer = post.await.unwrap();
    assert_eq!(
        (answer.status, answer.location.as_deref()),
        (303, Some("/admin/users"))
    );
    let page = unescape(&browser.get("/admin/users").await.body);
    assert!(
        page.contains("id=\"sync-status\">同步中 · syncing (始于"),
        "WeChat has not said how many follow yet: {page}"
    );
    // Asked again meanwhile: the same run goes on, no second one starts.
    let again = browser
        .post_form("/admin/users/sync", &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, 303);
    let run = finished_sync(&app).await.expect("the run finished");
    assert_eq!(run.seen, 300);
    assert_eq!(
        mock.calls(USER_GET),
        2,
        "one walk: a page and the empty end"
    );
    let page = unescape(&browser.get("/admin/users").await.body);
    assert!(
        page.contains("上次同步") && page.contains("300 位关注中"),
        "{page}"
    );
    // Without the form's token nothing starts.
    let forged = browser.post_form("/admin/users/sync", &[]).await;
    assert!(forged.status >= 400, "{}", forged.status);
    assert_eq!(mock.calls(USER_GET), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_resumes_a_sync_whose_process_died() {
    let mock = MockWeChat::start().await;
    mock.set_roster(roster(3_000));
    let db = std::sync::Arc::new(TestDb::fresh().await);
    // A run stopped at the end of the first page of a thousand, its process silent for two minutes.
    {
        let app = TestApp::spawn_in(db.clone(), &[]).await;
        app.stop().await;
    }
    let started = unix_now() - 600;
    db.connect()
        .await
        .execute(&format!(
            "INSERT INTO follower_sync (id, state, started_at, cursor, total, seen, owner, heartbeat_at)
             VALUES (1, 'running', {started}, '{}', 3000, 1000, 'gone:1', {})",
            roster(1000)[999],
            unix_now() - 120
        ))
        .await;
    let app = TestApp::spawn_in(
        db.clone(),
        &[
            ("WXPORTAL_APPSECRET", APPSECRET),
            ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
            ("WXPORTAL_SYNC_RATE", "1000"),
        ],
    )
    .await;
    let run = finished_sync(&app)
        .await
        .expect("the server resumed and finished the run");
    assert_eq!(run.started_at, started, "the same run, resumed");
    // Only the two thousand after the cursor were asked about.
    assert_eq!(mock.calls(BATCHGET), 20);
    assert_eq!(run.seen, 2_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nightly_sync_starts_in_its_hour_and_never_when_off() {
    // The hour it is now in Beijing, and the next one.
    let hour = (unix_now() + 8 * 3600).rem_euclid(86_400) / 3600;
    let start = |hour: String| async move {
        let mock = MockWeChat::start().await;
        mock.set_roster(roster(300));
        let app = TestApp::spawn(&[
            ("WXPORTAL_APPSECRET", APPSECRET),
            ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
            ("WXPORTAL_SYNC_RATE", "1000"),
            ("WXPORTAL_SYNC_HOUR", hour.as_str()),
        ])
        .await;
        (app, mock)
    };
    let (now, now_mock) = start(hour.to_string()).await;
    let (later, later_mock) = start(((hour + 1) % 24).to_string()).await;
    let (off, off_mock) = start("off".into()).await;
    let run = finished_sync(&now)
        .await
        .expect("the sync of this hour ran at start-up");
    assert_eq!(run.seen, 300);
    assert_eq!(now_mock.calls(BATCHGET), 3);
    // The others had as long, and their first look came at start-up too.
    for (app, mock) in [(&later, &later_mock), (&off, &off_mock)] {
        assert!(app.store.follower_sync().await.unwrap().is_none());
        assert_eq!(mock.calls(USER_GET), 0);
    }
}
