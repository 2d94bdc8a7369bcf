//! HTTP edges: slow clients, body limits, caching and HSTS, path segments, CSV cells.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_are_cut_off_and_cannot_starve_the_webhook() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use wxportal::wechat::MessageMode;
    let app = TestApp::spawn(&[]).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // 50 connections sending their headers a byte every 2 seconds, for up to 20 seconds.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"POST /wechat HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut buf = [0u8; 256];
            while started.elapsed() < Duration::from_secs(20) {
                tokio::select! {
                    // The server answered (408) or closed: it cut the client off.
                    read = stream.read(&mut buf) => {
                        let _ = read;
                        return Some(started.elapsed());
                    }
                    () = tokio::time::sleep(Duration::from_secs(2)) => {
                        if stream.write_all(b"X").await.is_err() {
                            return Some(started.elapsed());
                        }
                    }
                }
            }
            None
        }));
    }
    // And a kept-alive connection that goes quiet after one request.
    let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    let idle = tokio::spawn(async move {
        let started = Instant::now();
        let closed = idle.read(&mut answer).await.unwrap_or(0);
        (closed, started.elapsed())
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let (status, _) = app
        .post(&text("oReal", "你好", "8801"), MessageMode::Plain, None)
        .await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let (read, idle_for) = idle.await.unwrap();
    assert_eq!(read, 0, "closed, not answered");
    assert!(
        idle_for >= Duration::from_secs(9) && idle_for < Duration::from_secs(14),
        "{idle_for:?}"
    );
    for conn in slow {
        let cut_after = conn.await.unwrap().expect("the slow client was cut off");
        assert!(
            cut_after >= Duration::from_secs(9) && cut_after < Duration::from_secs(14),
            "{cut_after:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_64_kib_are_refused_on_every_route_that_takes_one() {
    let app = with_admin(&[]).await;
    let big = "x=".to_owned() + &"a".repeat(70 * 1024);
    for path in ["/admin/login", "/auth/logout", "/me/refresh", "/me/delete"] {
        let response = app
            .client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{path}");
    }
    // The webhook too, signed.
    let query = signed_query(&wxportal::time::unix_now().to_string());
    let (status, _) = app
        .post_raw(
            &query,
            Some("text/xml"),
            "<xml>".to_owned() + &"a".repeat(70 * 1024),
        )
        .await;
    assert_eq!(status, 413);
    // And a signed-in operator's form.
    let (browser, csrf) = crate::admin::signed_in(&app).await;
    let content = "a".repeat(70 * 1024);
    let page = browser
        .post_form(
            "/admin/replies/new",
            &[
                ("csrf", &csrf),
                ("reply_type", "text"),
                ("content", &content),
            ],
        )
        .await;
    assert_eq!(page.status, 413);
}

#[tokio::test(flavor = "multi_thread")]
async fn personal_pages_are_never_cached_and_https_brings_hsts() {
    let (app, mock) = portal_with(&[]).await;
    let browser = Browser::new(&app);
    let state = browser.start_login("").await;
    let code = mock.issue_code("oPrivate", "snsapi_userinfo");
    browser.callback(&code, &state).await;
    let cookie = browser.cookie().unwrap();
    for path in ["/me", "/me/delete"] {
        let response = app
            .client
            .get(app.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        assert!(!response.headers().contains_key("strict-transport-security"));
    }
    let https = TestApp::spawn(&[("WXPORTAL_PUBLIC_URL", "https://portal.test")]).await;
    for path in ["/", "/healthz", "/admin/login"] {
        let response = https.client.get(https.url(path)).send().await.unwrap();
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openid_with_slashes_dots_or_hashes_stays_one_path_segment() {
    use wxportal::wechat::MessageMode;
    let app = with_admin(&[]).await;
    let odd = "o/../x?y#z";
    let (status, _) = app
        .post(&text(odd, "hi", "8901"), MessageMode::Plain, None)
        .await;
    assert_eq!(status, 200);
    let (browser, _) = crate::admin::signed_in(&app).await;
    let encoded = "/admin/users/o%2F..%2Fx%3Fy%23z";
    for list in ["/admin/users", "/admin/messages", "/admin/messages/1"] {
        let page = browser.get(list).await;
        assert!(page.body.contains(encoded), "{list}: {}", page.body);
    }
    let detail = browser.get(encoded).await;
    assert_eq!(detail.status, 200);
    assert!(detail.body.contains(odd));
    assert!(
        detail
            .body
            .contains("action=\"/admin/users/o%2F..%2Fx%3Fy%23z/delete\"")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_text_column_of_the_csv_is_defused_the_openid_too() {
    use wxportal::wechat::MessageMode;
    let app = with_admin(&[]).await;
    let (status, _) = app
        .post(
            &text("=HYPERLINK(\"x\")", "hi", "8902"),
            MessageMode::Plain,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (browser, _) = crate::admin::signed_in(&app).await;
    let csv = browser.get("/admin/users.csv").await.body;
    assert!(csv.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{csv}");
}
