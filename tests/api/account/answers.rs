//! Operators answer followers from the conversation: customer-service messages through the outbox, the
//! 48-hour window enforced before anything is queued, WeChat's 45015 still handled.

use super::*;

const FOLLOWER: &str = "oAnswered0000000000000000001";

/// The conversation as the operator sees it, once `done` holds for it (or after 5 s).
async fn conversation_until(
    browser: &Browser,
    path: &str,
    mut done: impl FnMut(&str) -> bool,
) -> String {
    for _ in 0..100 {
        let page = unescape(&browser.get(path).await.body);
        if done(&page) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unescape(&browser.get(path).await.body)
}

async fn jobs_for(app: &TestApp, openid: &str) -> i64 {
    app.raw_db()
        .await
        .number(&format!(
            "SELECT count(*) FROM outbox WHERE openid = '{openid}' AND kind = 'custom'"
        ))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_answers_from_the_follower_and_the_message_pages() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    reply_to(&app, &text(FOLLOWER, "在吗？我的订单", "9301")).await;
    let user_page = format!("/admin/users/{FOLLOWER}");

    let before = unescape(&browser.get(&user_page).await.body);
    assert!(before.contains("可回复至"), "the window is open: {before}");
    assert!(before.contains("在吗？我的订单"), "{before}");

    let answer = "您好，<b>已收到</b> 😀";
    let page = browser
        .post_form(
            &format!("{user_page}/answer"),
            &[("csrf", &csrf), ("text", answer)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location.as_deref(),
        Some(&*format!("{user_page}#conversation"))
    );
    assert!(eventually(5, || mock.sent().len() == 1).await);
    assert_eq!(
        mock.sent()[0],
        json!({"touser": FOLLOWER, "msgtype": "text", "text": {"content": answer}})
    );
    let after = conversation_until(&browser, &user_page, |p| p.contains("已发送 · sent")).await;
    assert!(
        after.contains("ops · 人工回复"),
        "the author is shown: {after}"
    );
    assert!(after.contains(answer), "{after}");
    assert!(
        !browser.get(&user_page).await.body.contains("<b>已收到"),
        "markup stays text"
    );
    // Newest last: the follower's message, the rule's passive reply, then the answer.
    let (asked, answered) = (
        after.find("在吗？我的订单").unwrap(),
        after.find(answer).unwrap(),
    );
    assert!(asked < answered);

    // From a message's page, an image by media_id; back to that page.
    let message = app.store.recent_messages(1).await.unwrap().remove(0);
    let message_page = format!("/admin/messages/{}", message.id);
    assert!(unescape(&browser.get(&message_page).await.body).contains(answer));
    let page = browser
        .post_form(
            &format!("{user_page}/answer"),
            &[
                ("csrf", &csrf),
                ("media_id", "MEDIA_id-123"),
                ("message", &message.id.to_string()),
            ],
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some(&*format!("{message_page}#conversation"))
    );
    assert!(eventually(5, || mock.sent().len() == 2).await);
    assert_eq!(
        mock.sent()[1],
        json!({"touser": FOLLOWER, "msgtype": "image", "image": {"media_id": "MEDIA_id-123"}})
    );
    // One access_token served every call.
    assert_eq!(mock.calls(STABLE), 1);
    let tokens = mock.tokens_used(CUSTOM_SEND);
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0], tokens[1]);
    assert_eq!(jobs_for(&app, FOLLOWER).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_are_refused_outside_the_48_hour_window_before_anything_is_queued() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    let user_page = format!("/admin/users/{FOLLOWER}");
    let answer = |text: &'static str| {
        let (browser, csrf, path) = (&browser, csrf.clone(), format!("{user_page}/answer"));
        async move {
            browser
                .post_form(&path, &[("csrf", &csrf), ("text", text)])
                .await
        }
    };

    // The follower wrote 49 hours ago.
    reply_to(&app, &text(FOLLOWER, "旧消息", "9401")).await;
    app.raw_db()
        .await
        .execute(&format!(
            "UPDATE messages SET received_at = received_at - 49 * 3600 WHERE openid = '{FOLLOWER}'"
        ))
        .await;
    let page = unescape(&browser.get(&user_page).await.body);
    assert!(page.contains("48 小时窗口已于"), "{page}");
    assert!(page.contains("disabled"), "the box is off: {page}");
    let refused = answer("还在吗").await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(unescape(&refused.body).contains("48-hour window closed"));

    // A menu VIEW and an unsubscribe do not open the window; a CLICK does.
    for (i, name) in ["VIEW", "unsubscribe"].into_iter().enumerate() {
        reply_to(&app, &event(FOLLOWER, name, unix_now() + i as i64)).await;
        assert_eq!(answer("还在吗").await.status, 409, "after {name}");
    }
    assert_eq!(jobs_for(&app, FOLLOWER).await, 0, "nothing queued");
    reply_to(&app, &event(FOLLOWER, "CLICK", unix_now() + 5)).await;
    assert_eq!(answer("在的").await.status, 303);
    assert!(eventually(5, || mock.sent().len() == 1).await);

    // Bad answers get a clear 400 and queue nothing; an unknown follower is a 404.
    for form in [
        vec![("text", "   ")],
        vec![("text", "文字"), ("media_id", "M1")],
        vec![("media_id", "../etc")],
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let page = browser
            .post_form(&format!("{user_page}/answer"), &form)
            .await;
        assert_eq!(page.status, 400, "{form:?}: {}", page.body);
    }
    let long = "长".repeat(2_001);
    let page = browser
        .post_form(
            &format!("{user_page}/answer"),
            &[("csrf", &csrf), ("text", &long)],
        )
        .await;
    assert_eq!(page.status, 400);
    let page = browser
        .post_form(
            "/admin/users/oNobody/answer",
            &[("csrf", &csrf), ("text", "hi")],
        )
        .await;
    assert_eq!(page.status, 404);
    assert_eq!(jobs_for(&app, FOLLOWER).await, 1);
    assert_eq!(jobs_for(&app, "oNobody").await, 0);
    assert_eq!(mock.calls(CUSTOM_SEND), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn when_wechat_says_the_window_closed_the_answer_is_given_up_with_its_reason() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    reply_to(&app, &text(FOLLOWER, "你好", "9501")).await;
    let user_page = format!("/admin/users/{FOLLOWER}");

    // Our clock and WeChat's disagree: 45015 cannot succeed, so it is not retried.
    mock.script(CUSTOM_SEND, Scripted::Errcode(45015));
    let page = browser
        .post_form(
            &format!("{user_page}/answer"),
            &[("csrf", &csrf), ("text", "稍后联系您")],
        )
        .await;
    assert_eq!(page.status, 303);
    let page = conversation_until(&browser, &user_page, |p| p.contains("已放弃")).await;
    assert!(page.contains("已放弃 · given up"), "{page}");
    assert!(
        page.contains("45015") && page.contains("48 hours"),
        "{page}"
    );
    assert!(
        page.contains("稍后联系您"),
        "what was written stays: {page}"
    );
    // A passing failure shows as retrying, then sent.
    mock.script(CUSTOM_SEND, Scripted::Status(502));
    browser
        .post_form(
            &format!("{user_page}/answer"),
            &[("csrf", &csrf), ("text", "第二次")],
        )
        .await;
    let page = conversation_until(&browser, &user_page, |p| p.contains("重试中")).await;
    assert!(
        page.contains("重试中 · retrying") && page.contains("502"),
        "{page}"
    );
    assert!(eventually(8, || mock.sent().len() == 1).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(mock.calls(CUSTOM_SEND), 3, "45015 once, 502 then success");
    let outbox = unescape(&browser.get("/admin/outbox").await.body);
    assert!(outbox.contains("人工回复 · operator"), "{outbox}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_accounts_links_show_as_links_and_a_followers_markup_stays_text() {
    let (app, _mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    add_rule(
        &browser,
        &csrf,
        "门店",
        "看 <a href=\"https://shop.example/map\">门店地图</a> 吧",
        false,
    )
    .await;
    reply_to(&app, &text(FOLLOWER, "门店", "9401")).await;
    reply_to(
        &app,
        &text(
            FOLLOWER,
            "<a href=\"https://evil.example/\">点我</a>",
            "9402",
        ),
    )
    .await;
    let page = browser.get(&format!("/admin/users/{FOLLOWER}")).await.body;
    assert!(
        page.contains(
            "<a href=\"https://shop.example/map\" rel=\"noopener noreferrer\" target=\"_blank\">门店地图</a>"
        ),
        "the rule's link is a link: {page}"
    );
    assert!(!page.contains("href=\"https://evil.example/"), "{page}");
    assert!(unescape(&page).contains("<a href=\"https://evil.example/\">点我</a>"));
}
