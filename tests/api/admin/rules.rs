//! Reply rules: edits that change the next reply, on every instance, and forms refused whole.

use super::*;

/// Posts the rule form; returns the page.
async fn save_rule(browser: &Browser, csrf: &str, path: &str, fields: &[(&str, &str)]) -> Page {
    let mut form = vec![("csrf", csrf), ("enabled", "on")];
    form.extend_from_slice(fields);
    browser.post_form(path, &form).await
}

#[tokio::test]
async fn a_rule_edit_changes_the_very_next_webhook_reply() {
    let app = with_admin(&[]).await;
    let (browser, csrf) = signed_in(&app).await;
    let content =
        |r: Option<wxportal::wechat::XmlFields>| r.map(|r| r.text("Content")).unwrap_or_default();

    // Built in: the default reply links the guide page.
    let before = content(reply_to(&app, &text("oA", "价格", "1")).await);
    assert!(before.contains(&format!("{PUBLIC_URL}/")), "{before}");

    let page = save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "exact"),
            ("keyword", "价格"),
            ("reply_type", "text"),
            ("content", "99 元"),
        ],
    )
    .await;
    assert_eq!(page.status, 303, "{page:?}");
    assert_eq!(
        content(reply_to(&app, &text("oA", " 价格 ", "2")).await),
        "99 元"
    );
    // Exact means the whole message: anything else gets the default reply.
    assert_eq!(
        content(reply_to(&app, &text("oA", "价格多少", "3")).await),
        before
    );

    let id = app.store.reply_rules().await.unwrap().last().unwrap().id;
    let page = save_rule(
        &browser,
        &csrf,
        &format!("/admin/replies/{id}"),
        &[
            ("match_mode", "contains"),
            ("keyword", "价格"),
            ("reply_type", "text"),
            ("content", "现价 88 元"),
            ("click_key", "PRICE"),
        ],
    )
    .await;
    assert_eq!(page.status, 303, "{page:?}");
    assert_eq!(
        content(reply_to(&app, &text("oA", "价格多少", "4")).await),
        "现价 88 元"
    );
    // The same rule answers its menu key.
    assert_eq!(
        content(reply_to(&app, &click("oA", "PRICE")).await),
        "现价 88 元"
    );
    assert!(reply_to(&app, &click("oOther", "OTHER")).await.is_none());

    // Welcome: edited, then switched off.
    let welcome = app
        .store
        .reply_rules()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kind == wxportal::store::RuleKind::Welcome)
        .unwrap()
        .id;
    save_rule(
        &browser,
        &csrf,
        &format!("/admin/replies/{welcome}"),
        &[
            ("reply_type", "text"),
            ("content", "新的欢迎语 {guide_url}"),
        ],
    )
    .await;
    let hello = content(reply_to(&app, &event("oB", "subscribe", unix_now())).await);
    assert_eq!(hello, format!("新的欢迎语 {PUBLIC_URL}/"));
    let page = browser
        .post_form(
            &format!("/admin/replies/{welcome}"),
            &[("csrf", &csrf), ("reply_type", "text"), ("content", "off")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert!(
        reply_to(&app, &event("oC", "subscribe", unix_now()))
            .await
            .is_none()
    );

    // Order: a second rule that also matches wins only once moved above the first.
    save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "contains"),
            ("keyword", "价"),
            ("reply_type", "text"),
            ("content", "second"),
        ],
    )
    .await;
    assert_eq!(
        content(reply_to(&app, &text("oA", "价格", "5")).await),
        "现价 88 元"
    );
    let second = app.store.reply_rules().await.unwrap().last().unwrap().id;
    let page = browser
        .post_form(
            &format!("/admin/replies/{second}/move"),
            &[("csrf", &csrf), ("direction", "up")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        content(reply_to(&app, &text("oA", "价格", "6")).await),
        "second"
    );
    // Deleted: the first rule answers again.
    let page = browser
        .post_form(
            &format!("/admin/replies/{second}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        content(reply_to(&app, &text("oA", "价格", "7")).await),
        "现价 88 元"
    );
}

#[tokio::test]
async fn an_edit_on_one_instance_reaches_another_sharing_the_database() {
    let first = with_admin(&[]).await;
    let second = TestApp::spawn_in(first.db.clone(), &[]).await;
    let (browser, csrf) = signed_in(&first).await;
    save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "exact"),
            ("keyword", "hours"),
            ("reply_type", "text"),
            ("content", "9 to 5"),
        ],
    )
    .await;
    let deadline = Instant::now() + wxportal::replies::WATCH_INTERVAL * 3;
    let mut i = 0;
    loop {
        i += 1;
        let reply = reply_to(&second, &text("oA", "hours", &format!("8{i}"))).await;
        if reply.map(|r| r.text("Content")).as_deref() == Some("9 to 5") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the other instance never reloaded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn keyword_replies_with_cdata_ends_and_markup_stay_valid_xml() {
    let app = with_admin(&[]).await;
    let (browser, csrf) = signed_in(&app).await;
    let tricky = "a ]]> b <b>bold</b> & <![CDATA[x]]> 😀\n第二行";
    save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "exact"),
            ("keyword", "xml"),
            ("reply_type", "text"),
            ("content", tricky),
        ],
    )
    .await;
    save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "exact"),
            ("keyword", "news"),
            ("reply_type", "news"),
            ("title", "T ]]> <b>"),
            ("description", "D & ]]>"),
            ("pic_url", "https://example.com/p.png"),
            ("url", "https://example.com/?a=1&b=]]>"),
        ],
    )
    .await;
    save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "exact"),
            ("keyword", "pic"),
            ("reply_type", "image"),
            ("media_id", "MEDIA_ID_1"),
        ],
    )
    .await;
    let reply = reply_to(&app, &text("oX", "xml", "1")).await.unwrap();
    assert_eq!(reply.text("MsgType"), "text");
    assert_eq!(reply.text("Content"), tricky);
    let news = reply_to(&app, &text("oX", "news", "2")).await.unwrap();
    assert_eq!(news.text("MsgType"), "news");
    assert_eq!(news.text("ArticleCount"), "1");
    assert_eq!(news.text("Articles/item/Title"), "T ]]> <b>");
    assert_eq!(news.text("Articles/item/Description"), "D & ]]>");
    assert_eq!(
        news.text("Articles/item/Url"),
        "https://example.com/?a=1&b=]]>"
    );
    let image = reply_to(&app, &text("oX", "pic", "3")).await.unwrap();
    assert_eq!(
        (
            image.text("MsgType").as_str(),
            image.text("Image/MediaId").as_str()
        ),
        ("image", "MEDIA_ID_1")
    );
}

#[tokio::test]
async fn a_bad_rule_is_refused_with_every_problem_named_and_nothing_stored() {
    let app = with_admin(&[]).await;
    let (browser, csrf) = signed_in(&app).await;
    let page = save_rule(
        &browser,
        &csrf,
        "/admin/replies/new",
        &[
            ("match_mode", "regex"),
            ("keyword", ""),
            ("reply_type", "news"),
            ("title", ""),
            ("url", "javascript:alert(1)"),
        ],
    )
    .await;
    assert_eq!(page.status, 422);
    for problem in [
        "匹配方式",
        "关键词、菜单 KEY 或二维码",
        "图文标题必填",
        "链接须以",
    ] {
        assert!(page.body.contains(problem), "{problem} in {}", page.body);
    }
    // Two rules may not share a menu key.
    for keyword in ["one", "two"] {
        save_rule(
            &browser,
            &csrf,
            "/admin/replies/new",
            &[
                ("match_mode", "exact"),
                ("keyword", keyword),
                ("reply_type", "text"),
                ("content", "x"),
                ("click_key", "K1"),
            ],
        )
        .await;
    }
    assert_eq!(app.store.reply_rules().await.unwrap().len(), 3);
    assert_eq!(browser.get("/admin/replies/999").await.status, 404);
    assert_eq!(
        browser
            .post_form("/admin/replies/1/delete", &[("csrf", &csrf)])
            .await
            .status,
        404,
        "welcome is switched off, not deleted"
    );
}
