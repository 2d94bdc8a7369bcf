//! Apps registered from the command line and the admin area; the secret shown once, stored hashed.

use serde_json::Value;

use super::*;
use crate::admin::{signed_in, with_admin};

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_registers_lists_rotates_and_deletes_apps_and_rotates_the_key() {
    let (app, _mock) = provider().await;
    let db = app.db.url.clone();
    let (ok, out) = wxportal_cli(
        &[
            "client",
            "create",
            "商城",
            "--redirect-uri",
            "https://shop.example.com/cb",
            "--consent",
        ],
        &db,
    );
    assert!(ok, "{out}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(
        (created["consent"].as_bool(), created["subject"].as_str()),
        (Some(true), Some("pairwise"))
    );
    let stored = app.store.client(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.secret_hash.as_deref(),
        Some(wxportal::oidc::hash(&secret).as_str()),
        "stored hashed"
    );
    assert!(
        !app.raw_db()
            .await
            .text("SELECT redirect_uris || coalesce(secret_hash, '') FROM oidc_clients")
            .await
            .contains(&secret)
    );

    let (ok, out) = wxportal_cli(&["client", "list"], &db);
    assert!(ok && out.contains(&id) && !out.contains(&secret), "{out}");
    let (ok, out) = wxportal_cli(&["client", "rotate-secret", &id], &db);
    let rotated: Value = serde_json::from_str(&out).unwrap();
    assert!(ok && rotated["client_secret"].as_str().unwrap() != secret);

    for bad in [
        vec![
            "client",
            "create",
            "x",
            "--redirect-uri",
            "http://shop.example.com/cb",
        ],
        vec![
            "client",
            "create",
            "x",
            "--redirect-uri",
            "https://*.example.com/cb",
        ],
        vec![
            "client",
            "create",
            "",
            "--redirect-uri",
            "https://shop.example.com/cb",
        ],
    ] {
        let (ok, out) = wxportal_cli(&bad, &db);
        assert!(!ok, "{bad:?}: {out}");
    }
    let (ok, out) = wxportal_cli(
        &[
            "client",
            "create",
            "SPA",
            "--redirect-uri",
            "https://spa.example.com/",
            "--public",
        ],
        &db,
    );
    assert!(
        ok && serde_json::from_str::<Value>(&out).unwrap()["client_secret"].is_null(),
        "{out}"
    );
    assert_eq!(
        app.store.clients().await.unwrap().len(),
        2,
        "nothing stored for the refused ones"
    );

    let before = app.store.signing_keys().await.unwrap();
    let (ok, out) = wxportal_cli(&["oidc", "rotate-key"], &db);
    assert!(ok, "{out}");
    let keys = app.store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), before.len() + 1);
    assert_eq!(keys.iter().filter(|k| k.retired_at.is_none()).count(), 1);

    let (ok, _) = wxportal_cli(&["client", "delete", &id], &db);
    assert!(ok);
    let (ok, out) = wxportal_cli(&["client", "delete", &id], &db);
    assert!(!ok && out.contains("no client"), "{out}");
}

#[tokio::test]
async fn operators_register_an_app_see_its_secret_once_and_delete_it() {
    let app = with_admin(&[]).await;
    let (browser, csrf) = signed_in(&app).await;
    let page = browser
        .post_form(
            "/admin/clients",
            &[
                ("csrf", &csrf),
                ("name", "预约 <Booking>"),
                (
                    "redirect_uris",
                    "https://book.example.com/cb\nhttps://book.example.com/cb2\n",
                ),
                ("consent", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let marker = "id=\"shown-secret\">";
    let start = page.body.find(marker).expect("the secret is shown") + marker.len();
    let secret = &page.body[start..start + 43];
    let clients = app.store.clients().await.unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].redirect_uris.len(), 2);
    assert!(clients[0].consent);
    assert!(wxportal::oidc::secret_matches(
        secret,
        clients[0].secret_hash.as_deref().unwrap()
    ));
    let list = browser.get("/admin/clients").await;
    assert!(
        list.body.contains(&clients[0].client_id) && !list.body.contains(secret),
        "shown once"
    );
    assert!(
        list.body.contains("预约 &#60;Booking&#62;") || list.body.contains("预约 &lt;Booking&gt;")
    );

    let refused = browser
        .post_form(
            "/admin/clients",
            &[
                ("csrf", &csrf),
                ("name", "x"),
                ("redirect_uris", "http://evil.example/"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400);
    let forged = browser
        .post_form(
            &format!("/admin/clients/{}/delete", clients[0].client_id),
            &[("csrf", "0")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let rotated = browser
        .post_form(
            &format!("/admin/clients/{}/rotate", clients[0].client_id),
            &[("csrf", &csrf)],
        )
        .await;
    assert!(rotated.body.contains("id=\"shown-secret\"") && !rotated.body.contains(secret));
    let deleted = browser
        .post_form(
            &format!("/admin/clients/{}/delete", clients[0].client_id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(deleted.status, 303);
    assert!(app.store.clients().await.unwrap().is_empty());
}
