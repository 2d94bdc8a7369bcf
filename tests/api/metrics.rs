//! `/metrics`: closed unless `WXPORTAL_METRICS=1`, always open to a signed-in operator at
//! `/admin/metrics`; counts by route pattern (never a path with an OpenID in it) and by message outcome.

use wxportal::wechat::MessageMode;

use crate::admin::{signed_in, with_admin};
use crate::helpers::*;

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_are_for_operators_unless_opened_and_count_routes_and_message_outcomes() {
    let app = with_admin(&[]).await;
    assert_eq!(
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "closed by default"
    );
    let anonymous = app
        .client
        .get(app.url("/admin/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 303);

    let push = text("oMetrics000000000000000000001", "你好", "424242");
    for _ in 0..2 {
        let (status, _) = app.post(&push, MessageMode::Plain, None).await;
        assert_eq!(status, 200);
    }
    let (browser, _) = signed_in(&app).await;
    browser
        .get("/admin/users/oMetrics000000000000000000001")
        .await;
    let page = browser.get("/admin/metrics").await;
    assert_eq!(page.status, 200);
    let text = page.body;
    assert_eq!(
        value(&text, "wxportal_webhook_messages_total{outcome=\"stored\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "wxportal_webhook_messages_total{outcome=\"duplicate\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "wxportal_http_requests_total{method=\"POST\",route=\"/wechat\",status=\"200\"}"
        ),
        Some(2.0)
    );
    assert!(text.contains("route=\"/admin/users/{openid}\""), "{text}");
    assert!(!text.contains("oMetrics"), "no OpenID in a label");
    assert!(text.contains("wxportal_http_request_duration_seconds_bucket{"));
    assert_eq!(
        value(&text, "wxportal_outbox_jobs{state=\"pending\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "wxportal_access_token_age_seconds"),
        Some(-1.0)
    );
    assert!(value(&text, "wxportal_database_connections{state=\"max\"}").unwrap() >= 1.0);
    assert!(text.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn wxportal_metrics_1_opens_metrics_to_a_scraper() {
    let app = TestApp::spawn(&[("WXPORTAL_METRICS", "1")]).await;
    app.client.get(app.url("/healthz")).send().await.unwrap();
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    assert_eq!(
        value(
            &text,
            "wxportal_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
}
