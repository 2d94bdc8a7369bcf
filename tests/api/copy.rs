//! `wxportal copy`: SQLite → PostgreSQL → SQLite leaves identical content, a rerun duplicates nothing,
//! and the copy serves on as the original did. Needs both backends: run from `tests/postgres`.

use std::process::{Command, Output};
use std::sync::Arc;

use wxportal::config::SqliteSync;
use wxportal::store::Store;
use wxportal::wechat::MessageMode;

use crate::account::add_rule;
use crate::helpers::*;
use crate::mock::{APPSECRET, MockWeChat};

const PASSWORD: &str = "correct horse battery";

fn copy(from: &str, to: &str, force: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wxportal"));
    cmd.args(["copy", "--from", from, "--to", to])
        .env_clear()
        .current_dir(std::env::temp_dir());
    if force {
        cmd.arg("--force");
    }
    cmd.output().unwrap()
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn snapshot(url: &str) -> Vec<(&'static str, Vec<Vec<wxportal::store::Cell>>)> {
    let store = Store::connect(url, SqliteSync::Full).await.unwrap();
    let rows = store.snapshot().await.unwrap();
    store.close().await;
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_to_postgres_to_sqlite_leaves_identical_content() {
    let mock = MockWeChat::start().await;
    let files = tempfile::tempdir().unwrap();
    let original = format!("sqlite://{}", files.path().join("original.db").display());
    let vars = [
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
        ("WXPORTAL_WECHAT_OPEN_URL", "http://open.wechat.test"),
        ("WXPORTAL_DATABASE_URL", original.as_str()),
    ];
    // An installation in use: an operator signed in, a rule added, messages and events, a follower who
    // authorized, a reply and an operator's answer delivered through the outbox, a QR code and its scan.
    let app = TestApp::spawn(&vars).await;
    let hash = wxportal::passwords::hash(PASSWORD).unwrap();
    assert!(app.store.create_admin("ops", &hash).await.unwrap());
    let admin = Browser::new(&app);
    let page = crate::admin::sign_in_with(&admin, "ops", PASSWORD).await;
    assert_eq!(page.status, 303);
    let csrf = admin.get("/admin").await.csrf();
    add_rule(&admin, &csrf, "慢", "稍等", true).await;
    for i in 0..30 {
        let from = format!("oCopy{i:023}");
        app.post(
            &event(&from, "subscribe", 1_700_000_000 + i),
            MessageMode::Plain,
            None,
        )
        .await;
        let (status, _) = app
            .post(
                &text(&from, "你好 🎉 <b>&", &format!("900{i}")),
                MessageMode::Plain,
                None,
            )
            .await;
        assert_eq!(status, 200);
    }
    app.post(&text("oCopy0", "慢", "9999"), MessageMode::Plain, None)
        .await;
    let follower = Browser::new(&app);
    let state = follower.start_login("").await;
    let code = mock.issue_code("oCopy1", "snsapi_userinfo");
    assert_eq!(
        follower.callback(&code, &state).await.location.as_deref(),
        Some("/me")
    );
    let answer = admin
        .post_form(
            &format!("/admin/users/{}/answer", "oCopy0"),
            &[("csrf", &csrf), ("text", "人工回复")],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert!(eventually(10, || mock.sent().len() == 2).await);
    let code = admin
        .post_form(
            "/admin/qr",
            &[("csrf", &csrf), ("name", "海报"), ("kind", "permanent")],
        )
        .await;
    assert_eq!(code.status, 303, "{}", code.body);
    let mut scan = event("oCopyScan", "subscribe", 1_800_000_000);
    scan.fields[1].1 = format!("qrscene_{}", mock.qr_requests()[0].0);
    app.post(&scan, MessageMode::Plain, None).await;
    let admin_cookie = admin.cookie();
    let db = app.db.clone();
    app.stop().await;

    let postgres = TestDb::fresh().await;
    let out = copy(&original, &postgres.url, false);
    assert!(out.status.success(), "{}", said(&out));
    assert!(said(&out).contains("counts verified"), "{}", said(&out));
    // Into a database that holds data only when told; told, the rerun duplicates nothing.
    let again = copy(&original, &postgres.url, false);
    assert!(!again.status.success());
    assert!(said(&again).contains("--force"), "{}", said(&again));
    let forced = copy(&original, &postgres.url, true);
    assert!(forced.status.success(), "{}", said(&forced));

    let back = format!("sqlite://{}", files.path().join("back.db").display());
    let out = copy(&postgres.url, &back, false);
    assert!(out.status.success(), "{}", said(&out));

    let before = snapshot(&original).await;
    assert!(
        before
            .iter()
            .any(|(t, rows)| *t == "messages" && rows.len() == 62)
    );
    assert!(
        before
            .iter()
            .any(|(t, rows)| *t == "qr_scans" && rows.len() == 1)
    );
    assert_eq!(snapshot(&postgres.url).await, before, "PostgreSQL copy");
    assert_eq!(snapshot(&back).await, before, "copied back to SQLite");

    // The copy serves on: the operator's session holds, and new rows get fresh ids.
    let moved = TestApp::spawn_in(
        Arc::new(postgres),
        &[
            ("WXPORTAL_APPSECRET", APPSECRET),
            ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
        ],
    )
    .await;
    let admin = Browser::new(&moved);
    admin.set_cookie(admin_cookie);
    assert_eq!(admin.get("/admin").await.status, 200);
    let (status, _) = moved
        .post(
            &text("oCopyNew", "新消息", "12345"),
            MessageMode::Plain,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(moved.message_count().await, 63);
    drop(db);
}
