//! The message list and detail, and the dashboard.

use super::*;

#[tokio::test]
async fn the_message_list_filters_and_the_detail_shows_the_raw_xml() {
    let app = with_admin(&[]).await;
    reply_to(&app, &text("oM1", "a <b> & c", "601")).await;
    reply_to(&app, &event("oM2", "subscribe", unix_now())).await;
    reply_to(&app, &click("oM1", "K")).await;
    let (browser, _) = signed_in(&app).await;
    let ids = |body: &str| body.matches("href=\"/admin/messages/").count();
    assert_eq!(ids(&browser.get("/admin/messages").await.body), 3);
    assert_eq!(ids(&browser.get("/admin/messages?kind=text").await.body), 1);
    assert_eq!(
        ids(&browser.get("/admin/messages?kind=event").await.body),
        2
    );
    assert_eq!(
        ids(&browser
            .get("/admin/messages?kind=event%3Asubscribe")
            .await
            .body),
        1
    );
    assert_eq!(
        ids(&browser.get("/admin/messages?openid=oM1").await.body),
        2
    );
    let list = browser
        .get("/admin/messages?kind=event%3Asubscribe")
        .await
        .body;
    assert!(list.contains("[text] 欢迎关注"), "the reply sent is shown");

    let first = app
        .store
        .list_messages(&wxportal::store::MessageQuery {
            msg_type: Some("text".into()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let page = browser
        .get(&format!("/admin/messages/{}", first[0].id))
        .await;
    assert_eq!(page.status, 200);
    assert!(
        unescape(&page.body).contains("<Content><![CDATA[a <b> & c]]></Content>"),
        "the raw XML is shown as text: {}",
        page.body
    );
    assert!(!page.body.contains("<Content>"));
    assert!(page.body.contains("id=\"reply-xml\""));
    assert_eq!(browser.get("/admin/messages/99999").await.status, 404);
    assert_eq!(
        browser.get("/admin/messages/not-a-number").await.status,
        400
    );
}

#[tokio::test]
async fn the_dashboard_counts_and_charts_thirty_days() {
    let app = with_admin(&[]).await;
    reply_to(&app, &event("oD1", "subscribe", unix_now())).await;
    reply_to(&app, &text("oD1", "hi", "701")).await;
    reply_to(&app, &text("oD2", "hi", "702")).await;
    let (browser, _) = signed_in(&app).await;
    let page = browser.get("/admin").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"stat-subscribed\">2<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"stat-today\">3<"));
    assert!(page.body.contains("id=\"stat-30\">3<"));
    assert_eq!(page.body.matches("<rect class=\"chart__bar\"").count(), 30);
    assert!(
        page.body.contains("height=\"140\""),
        "today's bar is the tallest"
    );
}
