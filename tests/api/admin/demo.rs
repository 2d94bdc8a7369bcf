//! The demo admin.

use super::*;

#[tokio::test]
async fn the_demo_prints_a_fresh_admin_password_that_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("demo.db").display());
    let mut passwords: Vec<String> = Vec::new();
    for _ in 0..2 {
        let (demo, banner) = wxportal::demo::build(&[
            ("WXPORTAL_BIND", "127.0.0.1:0".to_owned()),
            ("WXPORTAL_DATABASE_URL", db.clone()),
        ])
        .await
        .unwrap();
        let password = demo_password(&banner);
        assert_eq!(password.len(), 16);
        let base = format!("http://{}", demo.addr());
        let store = demo.state().store.clone();
        let stored = store
            .admin_by_name(wxportal::demo::DEMO_ADMIN)
            .await
            .unwrap()
            .unwrap();
        assert!(stored.password_hash.starts_with("$argon2id$"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(demo.run(async { stopped.await.unwrap_or(()) }));
        let browser = Browser::at(&base, browser_client());
        let page = sign_in_with(&browser, wxportal::demo::DEMO_ADMIN, &password).await;
        assert_eq!(page.status, 303, "the printed password signs in: {page:?}");
        assert_eq!(browser.get("/admin").await.status, 200);
        for old in &passwords {
            let page = sign_in_with(
                &Browser::at(&base, browser_client()),
                wxportal::demo::DEMO_ADMIN,
                old,
            )
            .await;
            assert_eq!(page.status, 401, "last start's password no longer works");
        }
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        passwords.push(password);
    }
    assert_ne!(passwords[0], passwords[1], "a new password at every start");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_sent_in_the_demo_shows_in_the_chat_and_its_delivery_is_reported() {
    let (base, db, banner) = spawn_demo().await;
    let follower = "oDemo0000000000000xiaoming";
    let browser = Browser::at(&base, browser_client());
    // 小明 writes first (sample follower 0), so the account knows him.
    let chat = browser
        .post_form(
            "/_sim/chat",
            &[("follower", "0"), ("kind", "text"), ("content", "你好")],
        )
        .await;
    assert_eq!(chat.status, 303, "{}", chat.body);
    let page = sign_in_with(
        &browser,
        wxportal::demo::DEMO_ADMIN,
        &demo_password(&banner),
    )
    .await;
    assert_eq!(page.status, 303);
    let csrf = browser.get("/admin/templates").await.csrf();
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
                ("audience", "one"),
                ("to", follower),
                ("value.first", "您的订单已发货"),
                ("value.keyword1", "A-1001"),
                ("value.keyword2", "顺丰"),
            ],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);

    // The card reaches the chat, and the stand-in's TEMPLATESENDJOBFINISH sets the send's status.
    let mut conn = db.connect().await;
    let mut delivered = 0;
    for _ in 0..100 {
        delivered = conn
            .number("SELECT count(*) FROM outbox WHERE kind = 'template' AND delivery = 'success'")
            .await;
        if delivered == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered, 1, "the delivery report was recorded");
    let transcript = unescape(&browser.get("/_sim/chat").await.body);
    assert!(transcript.contains("A-1001"), "{transcript}");
    let campaign = unescape(&browser.get(sent.location.as_deref().unwrap()).await.body);
    assert!(campaign.contains("success"), "{campaign}");
}
