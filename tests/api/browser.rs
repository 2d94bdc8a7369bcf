//! A real browser walks the demo: headless Chromium at 375×667 with WeChat's User-Agent, driven through
//! chromedriver. Guide → simulated consent → profile, then the follower chat.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them and sets
//! `WXPORTAL_REQUIRE_BROWSER=1`, which turns a missing browser into a failure). Screenshots are written to
//! `target/screenshots/` (or `$WXPORTAL_SCREENSHOTS`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::{WECHAT_UA, demo_password, spawn_demo};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Option<PathBuf> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// `POST /session/{id}/se/log`: the browser console, which W3C WebDriver leaves out.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(r#"{"type":"browser"}"#.to_owned()),
        )
    }
}

async fn console_errors(client: &Client) -> Vec<String> {
    let log = client.issue_cmd(BrowserLog).await.unwrap();
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].to_string())
        .collect()
}

async fn screenshot(client: &Client, name: &str) {
    let dir = std::env::var_os("WXPORTAL_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.png")),
        client.screenshot().await.unwrap(),
    )
    .unwrap();
}

/// The page fits a phone: nothing wider than the viewport.
async fn assert_fits_the_phone(client: &Client, page: &str) {
    let widths = client
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        widths[0].as_u64() <= widths[1].as_u64(),
        "{page} overflows the 375 px screen: {widths}"
    );
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Clicks the element `css` finds, and hands it back.
async fn click(client: &Client, css: &str) -> fantoccini::elements::Element {
    let element = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} is not on the page: {e}"));
    element.click().await.unwrap();
    element
}

/// Clicks a form's button and waits until the form's page is replaced by the answer: a navigation any
/// sooner (a reload) could cancel the POST.
async fn submit(client: &Client, css: &str) {
    let button = click(client, css).await;
    for _ in 0..100 {
        // A button of a page that is gone is stale.
        if button.is_enabled().await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css}'s form was never answered");
}

async fn wait_for(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"));
}

/// A headless Chromium session at phone size with WeChat's User-Agent, or `None` (the test skips) when
/// chromedriver is not installed and `WXPORTAL_REQUIRE_BROWSER` is unset.
async fn phone_browser() -> Option<(Driver, Client, tempfile::TempDir)> {
    let Some(driver_path) = chromedriver() else {
        assert!(
            std::env::var_os("WXPORTAL_REQUIRE_BROWSER").is_none(),
            "chromedriver is missing: apt-get install chromium chromium-driver"
        );
        eprintln!("SKIPPED: no chromedriver (apt-get install chromium chromium-driver)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Driver(
        Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage",
                format!("--user-data-dir={}", profile.path().display()),
            ],
            "mobileEmulation": {
                "deviceMetrics": { "width": 375, "height": 667, "pixelRatio": 2.0 },
                "userAgent": WECHAT_UA,
            },
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    let mut client = None;
    for _ in 0..50 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let client = client.expect("chromedriver starts a session");
    Some((driver, client, profile))
}

/// Waits until the address bar's path and query contain `part` (a navigation has landed).
async fn wait_for_url(client: &Client, part: &str) {
    for _ in 0..100 {
        let url = client.current_url().await.unwrap();
        if format!("{}?{}", url.path(), url.query().unwrap_or_default()).contains(part) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never navigated to {part}");
}

#[tokio::test]
async fn a_follower_walks_the_demo_in_a_phone_sized_wechat_browser() {
    let Some((_driver, client, _profile)) = phone_browser().await else {
        return;
    };
    let (base, _dir, _banner) = spawn_demo().await;

    // The guide page, as WeChat's browser shows it.
    client.goto(&format!("{base}/")).await.unwrap();
    assert!(text_of(&client, "#sim-banner").await.contains("Simulator"));
    assert_fits_the_phone(&client, "the guide").await;
    screenshot(&client, "1-guide").await;

    // Authorize → the simulated consent page; choose the follower whose nickname is markup.
    click(&client, "#authorize").await;
    wait_for(&client, "#consent").await;
    assert!(text_of(&client, "#sim-banner").await.contains("Simulator"));
    assert_fits_the_phone(&client, "the consent page").await;
    screenshot(&client, "2-consent").await;
    click(&client, "label[for='follower-2']").await;
    click(&client, "#allow").await;

    // The profile: the nickname is shown as the text it is, and runs nothing.
    wait_for(&client, "#profile").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/me");
    assert_eq!(
        text_of(&client, "#nickname").await,
        "<script>alert('hi')</script>"
    );
    let scripts = client
        .execute("return document.scripts.length", vec![])
        .await
        .unwrap();
    assert_eq!(scripts, json!(0), "no script element made it into the page");
    assert_fits_the_phone(&client, "the profile").await;
    screenshot(&client, "3-profile").await;

    // Sign out, sign in again as 小明 with the quiet scope.
    click(&client, "#logout").await;
    wait_for(&client, "#authorize").await;
    click(&client, "#silent").await;
    wait_for(&client, "#consent").await;
    click(&client, "#allow").await;
    wait_for(&client, "#profile").await;
    assert!(
        text_of(&client, "#profile")
            .await
            .contains("oDemo0000000000000xiaoming")
    );

    // The follower chat goes through the real signed, encrypted webhook.
    client.goto(&format!("{base}/_sim/chat")).await.unwrap();
    client
        .find(Locator::Id("content"))
        .await
        .unwrap()
        .send_keys("你好")
        .await
        .unwrap();
    submit(&client, "#send").await;
    wait_for(&client, "#latest").await;
    let answer = text_of(&client, "#latest").await;
    let link = client
        .find(Locator::Css("#latest a"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap();
    assert_eq!(
        link,
        Some(format!("{base}/")),
        "the help text links the portal: {answer}"
    );
    assert!(
        !answer.contains('⚠'),
        "WeChat would accept the reply: {answer}"
    );
    assert_fits_the_phone(&client, "the chat").await;
    screenshot(&client, "4-chat").await;

    let errors = console_errors(&client).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    client.close().await.unwrap();
}

#[tokio::test]
async fn an_operator_uses_the_admin_area_on_a_phone() {
    let Some((_driver, client, _profile)) = phone_browser().await else {
        return;
    };
    let (base, _dir, banner) = spawn_demo().await;
    let password = demo_password(&banner);

    // A follower authorizes first, so there is someone to find.
    client.goto(&format!("{base}/")).await.unwrap();
    click(&client, "#authorize").await;
    wait_for(&client, "#consent").await;
    click(&client, "#allow").await;
    wait_for(&client, "#profile").await;

    // Anonymous: /admin leads to the sign-in page, which leads back.
    client.goto(&format!("{base}/admin/users")).await.unwrap();
    wait_for(&client, "#login-form").await;
    assert_fits_the_phone(&client, "the sign-in page").await;
    screenshot(&client, "5-admin-login").await;
    let field = |id: &'static str| client.find(Locator::Id(id));
    field("name")
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    field("password")
        .await
        .unwrap()
        .send_keys("not it at all")
        .await
        .unwrap();
    click(&client, "#sign-in").await;
    wait_for(&client, "#login-error").await;
    field("password")
        .await
        .unwrap()
        .send_keys(&password)
        .await
        .unwrap();
    click(&client, "#sign-in").await;

    // The list: search the follower by part of the nickname, open the detail.
    wait_for(&client, "#user-filters").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/admin/users");
    field("q").await.unwrap().send_keys("小").await.unwrap();
    click(&client, "#search").await;
    wait_for_url(&client, "q=%E5%B0%8F").await;
    wait_for(&client, "#users a.mono").await;
    assert_eq!(text_of(&client, "#matching").await, "1");
    assert_fits_the_phone(&client, "the follower list").await;
    screenshot(&client, "6-admin-users").await;
    click(&client, "#users a.mono").await;
    wait_for(&client, "#userinfo").await;
    assert_eq!(text_of(&client, "#nickname").await, "小明");
    assert!(
        text_of(&client, "#userinfo")
            .await
            .contains("uDemo00000000000000xiaoming")
    );
    assert_fits_the_phone(&client, "the follower detail").await;
    screenshot(&client, "7-admin-user").await;

    // Every follower imported from (the simulated) WeChat, with its tags; one tagged from their page.
    client.goto(&format!("{base}/admin/users")).await.unwrap();
    submit(&client, "#sync").await;
    wait_for(&client, "#sync-status").await;
    let mut status = String::new();
    for _ in 0..50 {
        client.goto(&format!("{base}/admin/users")).await.unwrap();
        status = text_of(&client, "#sync-status").await;
        if status.contains("上次同步") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(status.contains("4 位关注中"), "{status}");
    wait_for(&client, "#tag-filter").await;
    assert_fits_the_phone(&client, "the follower list with tags").await;
    screenshot(&client, "7a-admin-users-synced").await;
    click(&client, "#users a.mono").await;
    wait_for(&client, "#tag-follower").await;
    click(&client, "#add-tag").await;
    // The page comes back with the tag among the follower's fields.
    let mut tagged = false;
    for _ in 0..50 {
        if let Ok(cells) = client.find(Locator::Css(".weui-cells")).await
            && cells.text().await.is_ok_and(|t| t.contains("星标"))
        {
            tagged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(tagged, "the follower's page shows the tag");

    // An event endpoint: added here, its secret shown once, its page with its deliveries.
    client
        .goto(&format!("{base}/admin/endpoints"))
        .await
        .unwrap();
    wait_for(&client, "#new-endpoint").await;
    field("endpoint-url")
        .await
        .unwrap()
        .send_keys("https://crm.example.com/wechat-events")
        .await
        .unwrap();
    click(&client, "#event-message").await;
    click(&client, "#event-subscribe").await;
    click(&client, "#add-endpoint").await;
    wait_for(&client, "#shown-secret").await;
    assert!(
        text_of(&client, "#shown-secret")
            .await
            .starts_with("whsec_")
    );
    assert_fits_the_phone(&client, "the event endpoints").await;
    screenshot(&client, "7b-admin-endpoints").await;
    click(&client, "#endpoints a").await;
    wait_for(&client, "#deliveries").await;
    assert_fits_the_phone(&client, "an event endpoint").await;
    screenshot(&client, "7c-admin-endpoint").await;

    // A keyword rule, added here, answers the follower's next message.
    click(&client, "#nav-replies").await;
    wait_for(&client, "#new-rule").await;
    click(&client, "#new-rule").await;
    wait_for(&client, "#rule-form").await;
    field("keyword")
        .await
        .unwrap()
        .send_keys("营业时间")
        .await
        .unwrap();
    field("content")
        .await
        .unwrap()
        .send_keys("每天 9:00–18:00")
        .await
        .unwrap();
    field("click_key")
        .await
        .unwrap()
        .send_keys("HOURS")
        .await
        .unwrap();
    assert_fits_the_phone(&client, "the rule form").await;
    screenshot(&client, "8-admin-rule").await;
    click(&client, "#save").await;
    wait_for(&client, "#rules").await;
    assert!(text_of(&client, "#rules").await.contains("营业时间"));
    assert_fits_the_phone(&client, "the reply rules").await;
    screenshot(&client, "9-admin-replies").await;

    client.goto(&format!("{base}/_sim/chat")).await.unwrap();
    field("content")
        .await
        .unwrap()
        .send_keys("营业时间")
        .await
        .unwrap();
    submit(&client, "#send").await;
    wait_for(&client, "#latest").await;
    let answer = text_of(&client, "#latest").await;
    assert!(answer.starts_with("每天 9:00–18:00"), "{answer}");

    // A menu whose button answers with that rule: pushed to the (simulated) WeChat, clicked in the chat.
    client.goto(&format!("{base}/admin/menu")).await.unwrap();
    wait_for(&client, "#menu-form").await;
    field("b1_name")
        .await
        .unwrap()
        .send_keys("营业时间")
        .await
        .unwrap();
    field("b1_type")
        .await
        .unwrap()
        .select_by_value("click")
        .await
        .unwrap();
    field("b1_value")
        .await
        .unwrap()
        .send_keys("HOURS")
        .await
        .unwrap();
    click(&client, "#push").await;
    wait_for(&client, "#menu-notice").await;
    assert!(text_of(&client, "#bindings").await.contains("answered by"));
    assert_fits_the_phone(&client, "the menu editor").await;
    screenshot(&client, "10-admin-menu").await;
    client.goto(&format!("{base}/_sim/chat")).await.unwrap();
    wait_for(&client, "#sim-menu").await;
    click(&client, "#sim-menu button").await;
    wait_for_url(&client, "follower=").await;
    let answer = text_of(&client, "#latest").await;
    assert!(answer.starts_with("每天 9:00–18:00"), "{answer}");

    // The dashboard counts them; sign out ends it.
    client.goto(&format!("{base}/admin")).await.unwrap();
    wait_for(&client, "#chart").await;
    assert_eq!(text_of(&client, "#stat-authorized").await, "1");
    assert_fits_the_phone(&client, "the dashboard").await;
    screenshot(&client, "11-admin-dashboard").await;
    click(&client, "#logout").await;
    wait_for(&client, "#login-form").await;
    client.goto(&format!("{base}/admin")).await.unwrap();
    wait_for(&client, "#login-form").await;

    // The wrong password's 401 is the one expected failure.
    let errors: Vec<_> = console_errors(&client)
        .await
        .into_iter()
        .filter(|e| !(e.contains("/admin/login") && e.contains("401")))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    client.close().await.unwrap();
}

/// Signs in to the demo's admin area as `admin`.
async fn sign_in(client: &Client, base: &str, password: &str) {
    client.goto(&format!("{base}/admin")).await.unwrap();
    wait_for(client, "#login-form").await;
    let field = |id: &'static str| client.find(Locator::Id(id));
    field("name")
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    field("password")
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    click(client, "#sign-in").await;
    wait_for(client, "#chart").await;
}

/// Reloads `url` until `css`'s text contains `text` (5 s). A page still navigating from a form
/// counts as not yet.
async fn reload_until(client: &Client, url: &str, css: &str, text: &str) -> String {
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        client.goto(url).await.unwrap();
        let Ok(element) = client.find(Locator::Css(css)).await else {
            continue;
        };
        if let Ok(shown) = element.text().await
            && shown.contains(text)
        {
            return shown;
        }
    }
    panic!("{css} never said {text:?}: {}", text_of(client, css).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_answers_sends_a_template_and_prints_a_code_that_the_chat_scans() {
    let Some((_driver, client, _profile)) = phone_browser().await else {
        return;
    };
    let (base, _dir, banner) = spawn_demo().await;
    let password = demo_password(&banner);
    let field = |id: &'static str| client.find(Locator::Id(id));
    let follower = "oDemo0000000000000xiaoming";

    // 小明 writes, which opens the 48-hour window.
    client.goto(&format!("{base}/_sim/chat")).await.unwrap();
    field("content")
        .await
        .unwrap()
        .send_keys("在吗")
        .await
        .unwrap();
    submit(&client, "#send").await;
    wait_for(&client, "#latest").await;

    // The operator answers from the conversation; it arrives in the chat.
    sign_in(&client, &base, &password).await;
    let user_page = format!("{base}/admin/users/{follower}");
    client.goto(&user_page).await.unwrap();
    wait_for(&client, "#answer").await;
    assert!(text_of(&client, "#window").await.contains("可回复至"));
    field("answer-text")
        .await
        .unwrap()
        .send_keys("您好，我是客服小王")
        .await
        .unwrap();
    submit(&client, "#send-answer").await;
    let log = reload_until(&client, &user_page, "#conversation-log", "已发送").await;
    assert!(
        log.contains("admin · 人工回复") && log.contains("在吗"),
        "{log}"
    );
    assert_fits_the_phone(&client, "the conversation").await;
    screenshot(&client, "12-admin-conversation").await;
    let chat = reload_until(
        &client,
        &format!("{base}/_sim/chat"),
        "#transcript",
        "客服小王",
    )
    .await;
    assert!(chat.contains("您好，我是客服小王"), "{chat}");

    // A template message, refreshed from WeChat, previewed, sent to 小明: a card in the chat.
    client
        .goto(&format!("{base}/admin/templates?to={follower}"))
        .await
        .unwrap();
    click(&client, "#refresh-templates").await;
    wait_for(&client, "#templates a").await;
    click(&client, "#templates a").await;
    wait_for(&client, "#template-form").await;
    field("value-first")
        .await
        .unwrap()
        .send_keys("您的订单已发货")
        .await
        .unwrap();
    field("value-keyword1")
        .await
        .unwrap()
        .send_keys("A-1001")
        .await
        .unwrap();
    click(&client, "#preview-template").await;
    wait_for(&client, "#preview").await;
    assert!(
        text_of(&client, "#preview")
            .await
            .contains("订单号：A-1001")
    );
    assert!(
        text_of(&client, "#reach").await.contains(follower),
        "to 小明 only"
    );
    assert_fits_the_phone(&client, "the template preview").await;
    screenshot(&client, "13-admin-template").await;
    click(&client, "#send-template").await;
    wait_for(&client, "#progress").await;
    let campaign = client.current_url().await.unwrap().to_string();
    reload_until(&client, &campaign, "#sent", "1").await;
    assert_fits_the_phone(&client, "the campaign").await;
    let chat = reload_until(
        &client,
        &format!("{base}/_sim/chat"),
        "#transcript",
        "订单发货通知",
    )
    .await;
    assert!(chat.contains("订单号：A-1001"), "{chat}");

    // A QR code, created and drawn here; the chat scans it as a newcomer; the code counts the scan.
    client.goto(&format!("{base}/admin/qr")).await.unwrap();
    field("code-name")
        .await
        .unwrap()
        .send_keys("门店海报")
        .await
        .unwrap();
    click(&client, "#create-code").await;
    wait_for(&client, ".qr-card img").await;
    let drawn: bool = client
        .execute(
            "const img = document.querySelector('.qr-card img'); return img.complete && img.naturalWidth > 0;",
            vec![],
        )
        .await
        .unwrap()
        .as_bool()
        .unwrap();
    assert!(drawn, "the code's SVG loads");
    assert_fits_the_phone(&client, "the QR codes").await;
    screenshot(&client, "14-admin-qr").await;
    client
        .goto(&format!("{base}/_sim/chat?follower=1"))
        .await
        .unwrap();
    wait_for(&client, "#sim-codes").await;
    submit(&client, "#sim-codes button").await;
    reload_until(
        &client,
        &format!("{base}/_sim/chat?follower=1"),
        "#latest",
        "欢迎关注",
    )
    .await;
    screenshot(&client, "15-chat-scan").await;
    reload_until(&client, &format!("{base}/admin/qr"), ".scans", "1").await;
    assert_eq!(text_of(&client, ".new-followers").await, "1");

    let errors = console_errors(&client).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_signs_in_to_the_sample_app_with_wechat_in_a_phone_browser() {
    let Some((_driver, client, _profile)) = phone_browser().await else {
        return;
    };
    let (base, _dir, banner) = spawn_demo().await;

    // The account's other app: one button.
    client.goto(&format!("{base}/_sim/app")).await.unwrap();
    assert_fits_the_phone(&client, "the sample app").await;
    screenshot(&client, "oidc-1-app").await;
    click(&client, "#rp-login").await;

    // Not signed in to the portal yet: WeChat's (simulated) consent, then the app's consent page.
    wait_for(&client, "#consent").await;
    click(&client, "#allow").await;
    wait_for(&client, "#app-name").await;
    assert!(text_of(&client, "#app-name").await.contains("示例应用"));
    assert_fits_the_phone(&client, "the app's consent page").await;
    screenshot(&client, "oidc-2-consent").await;
    click(&client, "#allow").await;

    // Back in the app, with the verified ID token and the userinfo claims.
    wait_for(&client, "#rp-name").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/_sim/app");
    assert_eq!(text_of(&client, "#rp-name").await, "小明");
    assert!(text_of(&client, "#rp-claims").await.contains("\"nonce\""));
    assert_fits_the_phone(&client, "the signed-in app").await;
    screenshot(&client, "oidc-3-signed-in").await;

    // Out of the app and the portal; signing in again asks WeChat again but not for consent.
    click(&client, "#rp-logout").await;
    wait_for(&client, "#rp-login").await;
    click(&client, "#rp-login").await;
    wait_for(&client, "#consent").await;
    click(&client, "#allow").await;
    wait_for(&client, "#rp-name").await;

    // An operator registers another app and sees its secret once.
    client.goto(&format!("{base}/admin/clients")).await.unwrap();
    wait_for(&client, "#login-form").await;
    let field = |id: &'static str| client.find(Locator::Id(id));
    field("name")
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    field("password")
        .await
        .unwrap()
        .send_keys(&demo_password(&banner))
        .await
        .unwrap();
    click(&client, "#sign-in").await;
    wait_for(&client, "#new-client").await;
    assert!(text_of(&client, "#clients").await.contains("demo-app"));
    field("client-name")
        .await
        .unwrap()
        .send_keys("积分商城")
        .await
        .unwrap();
    field("client-redirects")
        .await
        .unwrap()
        .send_keys("https://shop.example.com/callback")
        .await
        .unwrap();
    click(&client, "#create-client").await;
    wait_for(&client, "#shown-secret").await;
    assert_eq!(text_of(&client, "#shown-secret").await.len(), 43);
    assert_fits_the_phone(&client, "the apps page").await;
    screenshot(&client, "oidc-4-admin-apps").await;

    let errors = console_errors(&client).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    client.close().await.unwrap();
}
