//! QR codes with a scene: created through qrcode/create (exact JSON), drawn locally (decoded back to
//! WeChat's URL), scans attributed and answered with the bound rule, from the admin and the CLI.

use super::*;
use wxportal::wechat::push::Push;

const QR_CREATE: &str = "/cgi-bin/qrcode/create";

/// A subscribe through the code with `scene` (`qrscene_` + scene, as WeChat sends it), or a follower's
/// SCAN of it.
fn scan(from: &str, scene: &str, subscribe: bool, at: i64) -> Push {
    let mut push = event(from, if subscribe { "subscribe" } else { "SCAN" }, at);
    push.fields[1].1 = if subscribe {
        format!("qrscene_{scene}")
    } else {
        scene.to_owned()
    };
    push.fields.push(("Ticket".into(), "gQticket".into()));
    push
}

/// What the PNG at `path` encodes, read back with a QR decoder.
async fn decode_png(browser: &Browser, path: &str) -> String {
    let (status, content_type, bytes) = browser.get_bytes(path).await;
    assert_eq!((status, content_type.as_str()), (200, "image/png"));
    let image = image::load_from_memory(&bytes).unwrap().to_luma8();
    assert!(image.width() >= 1000, "print size: {}", image.width());
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_are_created_drawn_locally_and_attribute_and_answer_their_scans() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;

    let page = browser
        .post_form(
            "/admin/qr",
            &[
                ("csrf", &csrf),
                ("name", "门店海报 <b>"),
                ("kind", "temporary"),
                ("days", "7"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let (scene, request) = mock.qr_requests().remove(0);
    assert_eq!(
        request,
        json!({"expire_seconds": 604800, "action_name": "QR_STR_SCENE",
               "action_info": {"scene": {"scene_str": scene}}})
    );
    let page = browser
        .post_form(
            "/admin/qr",
            &[("csrf", &csrf), ("name", "名片"), ("kind", "permanent")],
        )
        .await;
    assert_eq!(page.status, 303);
    let (permanent_scene, request) = mock.qr_requests().remove(1);
    assert_eq!(
        request,
        json!({"action_name": "QR_LIMIT_STR_SCENE",
               "action_info": {"scene": {"scene_str": permanent_scene}}})
    );
    assert_ne!(scene, permanent_scene);

    // Drawn here from the URL WeChat returned: the PNG decodes back to it; the SVG is an SVG.
    let code = app.store.qr_codes().await.unwrap().pop().unwrap();
    assert_eq!(code.scene, scene);
    assert!(code.url.starts_with("http://weixin.qq.com/q/"));
    let decoded = decode_png(&browser, &format!("/admin/qr/{}/png", code.id)).await;
    assert_eq!(decoded, code.url);
    let svg = browser.get(&format!("/admin/qr/{}/svg", code.id)).await;
    assert_eq!(svg.status, 200);
    assert!(svg.body.starts_with("<?xml") && svg.body.contains("<svg"));
    assert_eq!(
        browser
            .get(&format!("/admin/qr/{}/gif", code.id))
            .await
            .status,
        400
    );
    assert_eq!(browser.get("/admin/qr/999/png").await.status, 404);

    // A rule bound to the code answers its scans, and a subscribe through it instead of the welcome.
    let page = browser
        .post_form(
            "/admin/replies/new",
            &[
                ("csrf", &csrf),
                ("match_mode", "exact"),
                ("qr_scene", &scene),
                ("reply_type", "text"),
                ("content", "门店专属优惠"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let newcomer = "oQrNewcomer00000000000000001";
    let regular = "oQrRegular000000000000000001";
    let now = unix_now();
    reply_to(&app, &event(regular, "subscribe", now - 100)).await;
    let answer = reply_to(&app, &scan(newcomer, &scene, true, now))
        .await
        .unwrap();
    assert_eq!(answer.get("Content"), Some("门店专属优惠"));
    let push = scan(regular, &scene, false, now + 1);
    let answer = reply_to(&app, &push).await.unwrap();
    assert_eq!(answer.get("Content"), Some("门店专属优惠"));
    reply_to(&app, &push).await; // WeChat's retry: counted once
    // A code with no bound rule: a scan gets nothing, a subscribe the welcome.
    let welcome = reply_to(&app, &scan("oQrOther", &permanent_scene, true, now))
        .await
        .unwrap();
    assert!(welcome.text("Content").contains("欢迎关注"));
    assert!(
        reply_to(&app, &scan(regular, &permanent_scene, false, now + 2))
            .await
            .is_none()
    );
    // The newcomer leaves later.
    reply_to(&app, &event(newcomer, "unsubscribe", now + 3)).await;

    let codes = app.store.qr_codes().await.unwrap();
    let counts = |scene: &str| {
        let c = codes.iter().find(|c| c.scene == scene).unwrap();
        (c.scans, c.new_followers, c.unfollowed)
    };
    assert_eq!(counts(&scene), (2, 1, 1));
    assert_eq!(counts(&permanent_scene), (2, 1, 0));
    let list = unescape(&browser.get("/admin/qr").await.body);
    assert!(
        list.contains("门店海报 <b>") && list.contains("永久 · permanent"),
        "{list}"
    );
    assert!(!browser.get("/admin/qr").await.body.contains("海报 <b>"));
    let newcomer_page = unescape(&browser.get(&format!("/admin/users/{newcomer}")).await.body);
    assert!(
        newcomer_page.contains(&format!("门店海报 <b> · {scene}")),
        "{newcomer_page}"
    );
    // One access_token for all of it.
    assert_eq!(mock.calls(STABLE), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_codes_are_refused_before_any_call_and_wechats_refusal_stores_nothing() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    for form in [
        vec![("name", ""), ("kind", "permanent")],
        vec![("name", "x"), ("kind", "temporary"), ("days", "31")],
        vec![("name", "x"), ("kind", "temporary"), ("days", "0")],
        vec![("name", "x"), ("kind", "forever")],
        vec![("name", &*"长".repeat(61)), ("kind", "permanent")],
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let page = browser.post_form("/admin/qr", &form).await;
        assert_eq!(page.status, 400, "{form:?}: {}", page.body);
    }
    assert_eq!(mock.calls(QR_CREATE), 0);
    mock.script(QR_CREATE, Scripted::Errcode(45009));
    let page = browser
        .post_form(
            "/admin/qr",
            &[("csrf", &csrf), ("name", "x"), ("kind", "permanent")],
        )
        .await;
    assert_eq!(page.status, 502);
    assert!(unescape(&page.body).contains("45009"), "{}", page.body);
    assert_eq!(app.rows("qr_codes").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn codes_are_created_and_listed_from_the_command_line_as_json() {
    let (app, mock) = account().await;
    let dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| wxportal_command("qr", args, &app.db.url, &mock.base, dir.path());

    let (ok, out, all) = cli(&["create", "海报", "--expires-in", "3600"]);
    assert!(ok, "{all}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let scene = created["scene"].as_str().unwrap();
    assert_eq!(created["name"], "海报");
    assert_eq!(created["permanent"], false);
    assert!(created["ticket"].as_str().unwrap().starts_with("gQ"));
    assert!(
        created["url"]
            .as_str()
            .unwrap()
            .starts_with("http://weixin.qq.com/q/")
    );
    let expires = created["expires_at"].as_i64().unwrap();
    assert!((expires - unix_now() - 3600).abs() < 60, "{created}");
    assert_eq!(
        mock.qr_requests()[0].1,
        json!({"expire_seconds": 3600, "action_name": "QR_STR_SCENE",
               "action_info": {"scene": {"scene_str": scene}}})
    );
    let (ok, _, all) = cli(&["create", "名片"]);
    assert!(ok, "{all}");
    assert_eq!(mock.qr_requests()[1].1["action_name"], "QR_LIMIT_STR_SCENE");

    // Refused before any call.
    let (ok, _, all) = cli(&["create", "x", "--expires-in", "10"]);
    assert!(!ok && all.contains("60 to 2592000"), "{all}");
    assert_eq!(mock.calls(QR_CREATE), 2);

    reply_to(&app, &scan("oCliScan", scene, true, unix_now())).await;
    let (ok, out, all) = cli(&["list"]);
    assert!(ok, "{all}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["scene"], scene);
    assert_eq!(listed[1]["scans"], 1);
    assert_eq!(listed[1]["new_followers"], 1);
    assert_eq!(listed[0]["permanent"], true);
    assert_eq!(listed[0]["created_by"], "cli");
    // The server and the CLI shared one access_token through the database.
    assert_eq!(mock.calls(STABLE), 1);
}
