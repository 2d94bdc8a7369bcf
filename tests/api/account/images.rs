//! Images: uploaded from the reply-rule editor and the answer box as permanent material, checked before
//! any call (type by content, 10 MB), a thumbnail drawn here, the media_id used by the reply.

use super::*;

const ADD_MATERIAL: &str = "/cgi-bin/material/add_material";

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([7, 193, 96]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_uploaded_in_the_rule_editor_becomes_the_rules_reply_with_a_thumbnail() {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    let rule = [
        ("csrf", csrf.as_str()),
        ("match_mode", "exact"),
        ("keyword", "海报"),
        ("reply_type", "image"),
        ("enabled", "on"),
    ];
    let page = browser
        .post_multipart(
            "/admin/replies/new",
            &rule,
            Some(("海报.png", png(600, 300))),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(mock.calls(ADD_MATERIAL), 1);
    let media_id = mock.images().pop().unwrap();
    let reply = reply_to(&app, &text("oImage", "海报", "9601"))
        .await
        .unwrap();
    assert_eq!(reply.get("MsgType"), Some("image"));
    assert_eq!(reply.get("Image/MediaId"), Some(media_id.as_str()));
    // WeChat got the image's bytes under a name whose extension says PNG.
    assert_eq!(
        mock.image(&media_id).unwrap().as_ref(),
        png(600, 300).as_slice()
    );

    let (status, content_type, thumbnail) = browser
        .get_bytes(&format!("/admin/media/{media_id}/thumbnail"))
        .await;
    assert_eq!((status, content_type.as_str()), (200, "image/png"));
    let thumbnail = image::load_from_memory(&thumbnail).unwrap();
    assert_eq!((thumbnail.width(), thumbnail.height()), (240, 120));
    let rules = app.store.reply_rules().await.unwrap();
    let id = rules
        .iter()
        .find(|r| r.keyword.as_deref() == Some("海报"))
        .unwrap()
        .id;
    let edit = browser.get(&format!("/admin/replies/{id}")).await.body;
    assert!(
        edit.contains(&format!("/admin/media/{media_id}/thumbnail")),
        "{edit}"
    );

    // An image with a text reply type is refused before any call; so is a file that is no image.
    let mut text_rule = rule.to_vec();
    text_rule[3] = ("reply_type", "text");
    text_rule.push(("content", "文字"));
    let page = browser
        .post_multipart(
            "/admin/replies/new",
            &text_rule,
            Some(("a.png", png(10, 10))),
        )
        .await;
    assert_eq!(page.status, 422);
    let page = browser
        .post_multipart(
            "/admin/replies/new",
            &rule,
            Some(("a.png", b"GIF89a not really".to_vec())),
        )
        .await;
    assert_eq!(page.status, 422);
    assert!(
        unescape(&page.body).contains("only JPEG and PNG"),
        "{}",
        page.body
    );
    assert_eq!(mock.calls(ADD_MATERIAL), 1);
    assert_eq!(app.rows("media").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_answers_with_an_uploaded_image_and_oversized_files_are_refused_before_any_call()
 {
    let (app, mock) = account().await;
    let (browser, csrf) = signed_in(&app).await;
    let follower = "oImageAnswer000000000000001";
    reply_to(&app, &text(follower, "发张图", "9701")).await;
    let path = format!("/admin/users/{follower}/answer");

    let page = browser
        .post_multipart(
            &path,
            &[("csrf", &csrf)],
            Some(("photo.png", png(320, 320))),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let media_id = mock.images().pop().unwrap();
    assert!(eventually(5, || mock.sent().len() == 1).await);
    assert_eq!(
        mock.sent()[0],
        json!({"touser": follower, "msgtype": "image", "image": {"media_id": media_id}})
    );
    let conversation = browser.get(&format!("/admin/users/{follower}")).await.body;
    assert!(
        conversation.contains(&format!("/admin/media/{media_id}/thumbnail")),
        "{conversation}"
    );

    // Over WeChat's 10 MB: 413, no call, nothing queued. A JPEG's first bytes make it look real.
    let mut big = vec![0xFF, 0xD8, 0xFF, 0xE0];
    big.resize(10 * 1024 * 1024 + 1, 0);
    let page = browser
        .post_multipart(&path, &[("csrf", &csrf)], Some(("big.jpg", big)))
        .await;
    assert_eq!(page.status, 413, "{}", page.body);
    assert!(
        unescape(&page.body).contains("at most 10 MB"),
        "{}",
        page.body
    );
    // Larger than any form may be: refused as it is read, with a 413 (or the connection closed while
    // the client was still sending, if that comes first); either way nothing is called or stored.
    let refused = browser
        .post_multipart_refused(
            &path,
            &[("csrf", &csrf)],
            Some(("huge.jpg", vec![0xFF; 11 * 1024 * 1024])),
        )
        .await;
    if let Some(page) = refused {
        assert_eq!(page.status, 413);
    }
    // Text and an image at once, a file that is no image, and no CSRF token: refused.
    let page = browser
        .post_multipart(
            &path,
            &[("csrf", &csrf), ("text", "看图")],
            Some(("a.png", png(8, 8))),
        )
        .await;
    assert_eq!(page.status, 400);
    let page = browser
        .post_multipart(
            &path,
            &[("csrf", &csrf)],
            Some(("a.png", b"%PDF-1.7".to_vec())),
        )
        .await;
    assert_eq!(page.status, 400);
    let page = browser
        .post_multipart(&path, &[("csrf", "forged")], Some(("a.png", png(8, 8))))
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(mock.calls(ADD_MATERIAL), 1);
    assert_eq!(app.rows("media").await, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mock.sent().len(), 1);
}
