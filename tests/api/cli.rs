//! The binary itself: `check` and `send`, with their exit codes.

use std::process::{Command, Output};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::any;

use crate::helpers::*;

fn wxportal(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wxportal"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    // Run where no .env file can leak settings in.
    cmd.current_dir(std::env::temp_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn check_reports_every_problem_at_once_and_fails() {
    let out = wxportal(
        &["check"],
        &[
            ("WXPORTAL_TOKEN", "x"),
            ("WXPORTAL_APPID", "123"),
            ("WXPORTAL_ENCODING_AES_KEY", "short"),
        ],
    );
    assert!(!out.status.success());
    let t = text(&out);
    for needle in [
        "3 problem(s)",
        "WXPORTAL_TOKEN must be 3–32",
        "WXPORTAL_APPID",
        "43",
    ] {
        assert!(t.contains(needle), "{needle} missing from {t}");
    }
}

#[test]
fn check_prints_the_settings_with_secrets_masked() {
    let out = wxportal(
        &["check"],
        &[
            ("WXPORTAL_TOKEN", "secretToken9"),
            ("WXPORTAL_APPID", APPID),
            ("WXPORTAL_APPSECRET", "0123456789abcdef0123456789abcdef"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains(APPID) && t.contains("configuration OK"));
    assert!(
        !t.contains("secretToken9") && !t.contains("0123456789abcdef0123456789abcdef"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_the_database_its_version_and_whether_migrations_are_current() {
    let db = std::sync::Arc::new(TestDb::fresh().await);
    let env = [
        ("WXPORTAL_TOKEN", "secretToken9"),
        ("WXPORTAL_APPID", APPID),
        ("WXPORTAL_DATABASE_URL", db.url.as_str()),
    ];
    let (backend, version) = match crate::BACKEND {
        Backend::Sqlite => ("database: SQLite 3.", "wxportal.db"),
        Backend::Postgres => ("database: PostgreSQL 1", "wxt_"),
    };
    // Before the first start: nothing applied, nothing changed by looking.
    let before = text(&tokio::task::block_in_place(|| wxportal(&["check"], &env)));
    assert!(before.contains(backend), "{before}");
    assert!(before.contains("to apply at the next start"), "{before}");
    assert!(before.contains(version), "the URL is shown: {before}");
    let pending_again = text(&tokio::task::block_in_place(|| wxportal(&["check"], &env)));
    assert!(pending_again.contains("to apply at the next start"));

    let app = TestApp::spawn_in(db.clone(), &[]).await;
    app.stop().await;
    let out = tokio::task::block_in_place(|| wxportal(&["check"], &env));
    let after = text(&out);
    assert!(out.status.success(), "{after}");
    assert!(after.contains("migrations current"), "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_masks_a_database_password() {
    let out = tokio::task::block_in_place(|| {
        wxportal(
            &["check"],
            &[
                ("WXPORTAL_TOKEN", "secretToken9"),
                ("WXPORTAL_APPID", APPID),
                (
                    "WXPORTAL_DATABASE_URL",
                    "postgres://wxportal:hunter2secret@127.0.0.1:1/wxportal",
                ),
            ],
        )
    });
    let t = text(&out);
    // Nothing listens on port 1: the check fails, and says why without the password.
    assert!(!out.status.success(), "{t}");
    assert!(!t.contains("hunter2secret"), "{t}");
}

#[test]
fn serve_refuses_to_start_on_a_bad_configuration() {
    let out = wxportal(&["serve"], &[("WXPORTAL_TOKEN", "ok123")]);
    assert!(!out.status.success());
    assert!(text(&out).contains("WXPORTAL_APPID is not set"));
}

#[tokio::test(flavor = "multi_thread")]
async fn send_exits_zero_when_wechat_would_accept_the_answer() {
    let app = TestApp::spawn(&[("WXPORTAL_ENCODING_AES_KEY", AES_KEY)]).await;
    let url = app.url("/wechat");
    let base = ["send", "--url", &url, "--token", TOKEN];
    let run = |extra: Vec<&str>| {
        let args: Vec<&str> = base.iter().copied().chain(extra).collect();
        wxportal(&args, &[])
    };
    let out = tokio::task::block_in_place(|| run(vec!["verify"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = tokio::task::block_in_place(|| run(vec!["text", "你好"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("accepted: the follower sees the reply"));
    let out = tokio::task::block_in_place(|| {
        run(vec![
            "--aes-key",
            AES_KEY,
            "--appid",
            APPID,
            "--mode",
            "safe",
            "subscribe",
        ])
    });
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("decrypted reply"));
    let out = tokio::task::block_in_place(|| run(vec!["click", "MENU"]));
    assert!(text(&out).contains("`success`"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn send_names_the_problem_and_exits_one_when_wechat_would_refuse() {
    let app = TestApp::spawn(&[]).await;
    let url = app.url("/wechat");
    let out = tokio::task::block_in_place(|| {
        wxportal(
            &["send", "--url", &url, "--token", "wrongToken", "text", "hi"],
            &[],
        )
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("403"), "{}", text(&out));

    // The seed-002 server: a framework that refuses text/xml.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mock = Router::new().route(
        "/wechat",
        any(|| async { (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported") }),
    );
    tokio::spawn(async move { axum::serve(listener, mock).await });
    let url = format!("http://{addr}/wechat");
    let out = tokio::task::block_in_place(|| {
        wxportal(
            &["send", "--url", &url, "--token", TOKEN, "text", "hi"],
            &[],
        )
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("415") && text(&out).contains("Content-Type"),
        "{}",
        text(&out)
    );

    // Nobody listening.
    let out = tokio::task::block_in_place(|| {
        wxportal(
            &[
                "send",
                "--url",
                "http://127.0.0.1:9/wechat",
                "--token",
                TOKEN,
                "verify",
            ],
            &[],
        )
    });
    assert_eq!(out.status.code(), Some(2));
}

/// `RUST_LOG` picks levels per target: debug for the webhook's module shows each message stored, while
/// the rest stays at warn (the startup line is info).
#[tokio::test]
async fn rust_log_turns_debug_on_for_one_target() {
    let db = TestDb::fresh().await;
    let server =
        ServerProcess::start(&db, &[("RUST_LOG", "warn,wxportal::web::webhook=debug")]).await;
    let client = wxportal::upstream::client_builder().build().unwrap();
    let push = crate::helpers::text("oLogged00000000000000000000", "你好", "9100");
    let (status, _) = post_to(&client, &server.base, &push).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        eventually(5, || server.log().contains("message stored")).await,
        "{}",
        server.log()
    );
    assert!(
        !server.log().contains("wxportal listening"),
        "{}",
        server.log()
    );
}
