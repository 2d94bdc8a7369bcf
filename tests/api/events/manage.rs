//! Managing endpoints: the command line and the admin area, bad input refused with nothing stored,
//! secrets shown once and rotated with an overlap, switching off after a day of failures, send again.

use wxportal::time::unix_now;

use super::*;
use crate::admin::{reply_to, signed_in, unescape, with_admin};

#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_refuses_what_cannot_be_delivered_and_stores_nothing() {
    let app = TestApp::spawn(&[]).await;
    for (url, events, why) in [
        ("ftp://crm.example.com/", "message", "not an http"),
        ("https://crm.example.com/", "messages", "unknown event type"),
        ("https://u:p@crm.example.com/", "message", "user name"),
        ("https://crm.example.com/#x", "message", "fragment"),
    ] {
        let (ok, out) = wxportal_cli(&["endpoint", "add", url, "--events", events], &app.db.url);
        assert!(!ok && out.contains(why), "{url}: {out}");
    }
    assert_eq!(app.rows("endpoints").await, 0);
    for args in [["endpoint", "delete", "99"], ["endpoint", "enable", "99"]] {
        let (ok, out) = wxportal_cli(&args, &app.db.url);
        assert!(!ok && out.contains("no endpoint 99"), "{out}");
    }
    let (id, secret) = add_endpoint(
        &app.db,
        "https://crm.example.com/e",
        "message,click,message",
    );
    let (ok, out) = wxportal_cli(&["endpoint", "list"], &app.db.url);
    assert!(ok, "{out}");
    assert!(!out.contains(&secret), "listing never shows a secret");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["events"], serde_json::json!(["message", "click"]));
    let (ok, _) = wxportal_cli(&["endpoint", "delete", &id.to_string()], &app.db.url);
    assert!(ok);
    assert_eq!(app.rows("endpoints").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_secret_and_the_old_one_both_sign_during_the_overlap() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn(&[]).await;
    let (id, old) = add_endpoint(&app.db, &receiver.url, "message");
    let (ok, out) = wxportal_cli(
        &[
            "endpoint",
            "rotate-secret",
            &id.to_string(),
            "--overlap-hours",
            "2",
        ],
        &app.db.url,
    );
    assert!(ok, "{out}");
    let new = serde_json::from_str::<Value>(&out).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new, old);
    picked_up().await;
    reply_to(&app, &text("oRotate", "one", "1")).await;
    assert!(eventually(5, || receiver.accepted().len() == 1).await);
    let during = &receiver.received()[0];
    assert!(
        during.signed_by(&old) && during.signed_by(&new),
        "{during:?}"
    );

    // No overlap: only the newest signs.
    let (ok, out) = wxportal_cli(
        &[
            "endpoint",
            "rotate-secret",
            &id.to_string(),
            "--overlap-hours",
            "0",
        ],
        &app.db.url,
    );
    assert!(ok, "{out}");
    let newest = serde_json::from_str::<Value>(&out).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    reply_to(&app, &text("oRotate", "two", "2")).await;
    assert!(eventually(5, || receiver.accepted().len() == 2).await);
    let after = &receiver.received()[1];
    assert!(after.signed_by(&newest));
    assert!(!after.signed_by(&new) && !after.signed_by(&old));
    assert_eq!(after.signature.split(' ').count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_failing_for_a_day_is_switched_off_and_sent_again_once_it_is_back() {
    let receiver = Receiver::start().await;
    let app = with_admin(&[]).await;
    let (browser, csrf) = signed_in(&app).await;

    // Added in the admin: the secret is shown once, on the page that follows.
    let page = browser
        .post_form(
            "/admin/endpoints",
            &[
                ("csrf", &csrf),
                ("url", &receiver.url),
                ("description", "CRM <b>"),
                ("event", "message"),
                ("event", "subscribe"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{page:?}");
    let marker = "id=\"shown-secret\">";
    let start = page.body.find(marker).unwrap() + marker.len();
    let secret = page.body[start..start + 50]
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let list = browser.get("/admin/endpoints").await.body;
    assert!(!list.contains(&secret), "shown once");
    assert!(
        !list.contains("CRM <b>") && unescape(&list).contains("CRM <b>"),
        "escaped: {list}"
    );
    let id: i64 = app
        .raw_db()
        .await
        .number("SELECT max(id) FROM endpoints")
        .await;

    // Every attempt fails.
    receiver.script(&[Answer::Status(503); 50]);
    reply_to(&app, &text("oDay", "first", "1")).await;
    assert!(eventually(5, || !receiver.received().is_empty()).await);
    assert!(
        eventually(5, || {
            futures_block(app.store.endpoint(id))
                .unwrap()
                .is_some_and(|e| e.failing_since.is_some())
        })
        .await
    );
    let detail = unescape(&browser.get(&format!("/admin/endpoints/{id}")).await.body);
    assert!(
        detail.contains("HTTP 503") && detail.contains("thanks"),
        "{detail}"
    );
    assert!(detail.contains("id=\"endpoint-failing\""), "{detail}");

    // As if the streak had begun a day ago and the delivery been queued two days ago: the next
    // failure gives the delivery up and switches the endpoint off.
    let day_ago = unix_now() - 86_401;
    let mut db = app.raw_db().await;
    db.execute(&format!("UPDATE endpoints SET failing_since = {day_ago}"))
        .await;
    db.execute(&format!("UPDATE deliveries SET give_up_at = {day_ago}"))
        .await;
    assert!(
        eventually(10, || {
            futures_block(app.store.endpoint(id))
                .unwrap()
                .is_some_and(|e| !e.enabled)
        })
        .await
    );
    let delivery = app
        .store
        .deliveries(id, None, None, 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(delivery.state.as_str(), "failed");
    let dashboard = unescape(&browser.get("/admin").await.body);
    assert!(
        dashboard.contains(&format!("id=\"endpoint-off-{id}\""))
            && dashboard.contains("failed for a day"),
        "{dashboard}"
    );
    // Switched off: new events are not queued for it.
    picked_up().await;
    reply_to(&app, &text("oDay", "while off", "2")).await;
    assert_eq!(app.rows("deliveries").await, 1);

    // Back on, the receiver recovered: the operator sends the given-up delivery again.
    receiver.recover();
    let page = browser
        .post_form(&format!("/admin/endpoints/{id}/enable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 303);
    let page = browser
        .post_form(
            &format!("/admin/endpoints/{id}/deliveries/{}/resend", delivery.id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, 303, "{page:?}");
    assert!(eventually(5, || receiver.accepted().len() == 1).await);
    let sent_again = &receiver.accepted()[0];
    assert_eq!(
        sent_again.id, delivery.uid,
        "the same event, the same webhook-id"
    );
    assert!(sent_again.signed_by(&secret));
    assert_eq!(sent_again.json["data"]["content"], "first");
    // A forged form changes nothing.
    let page = browser
        .post_form(
            &format!("/admin/endpoints/{id}/delete"),
            &[("csrf", "forged")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(app.rows("endpoints").await, 1);
    // Bad input in the admin: a clear 400, nothing stored.
    for form in [
        vec![
            ("csrf", csrf.as_str()),
            ("url", "javascript:alert(1)"),
            ("event", "message"),
        ],
        vec![("csrf", csrf.as_str()), ("url", "https://example.com/")],
    ] {
        let page = browser.post_form("/admin/endpoints", &form).await;
        assert_eq!(page.status, 400, "{page:?}");
    }
    assert_eq!(app.rows("endpoints").await, 1);
}

/// Runs a future to completion from a synchronous check.
fn futures_block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
