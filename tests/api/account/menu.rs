//! The custom menu: checked before sending, pushed, loaded, deleted, from the admin and the command line; the demo chat shows it.

use super::*;

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

/// Runs `wxportal menu ARGS` on a database of its own in `dir`.
fn wxportal_menu(args: &[&str], dir: &std::path::Path, api: &str) -> (bool, String, String) {
    let database = format!("sqlite://{}", dir.join("wxportal.db").display());
    wxportal_command("menu", args, &database, api, dir)
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
