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
