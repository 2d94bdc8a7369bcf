//! Permanent material (docs/wechat.md §12): images uploaded with `material/add_material`, kept by
//! media_id so the demo's chat can show them.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Multipart, Query, State};
use axum::response::Response;
use serde_json::json;

use super::account::with_token;
use super::{FakeWeChat, answer, error, lock, random_token};

/// WeChat's limit for an image.
const MAX_IMAGE: usize = 10 * 1024 * 1024;
/// Images kept for the chat to show; older ones are forgotten.
pub(super) const KEPT: usize = 50;

/// `POST /cgi-bin/material/add_material?type=image` with the multipart field `media`.
pub(crate) async fn add(
    State(wechat): State<FakeWeChat>,
    Query(q): Query<HashMap<String, String>>,
    mut form: Multipart,
) -> Response {
    if let Err(answer) = with_token(&wechat, "/cgi-bin/material/add_material", &q).await {
        return answer;
    }
    if q.get("type").map(String::as_str) != Some("image") {
        return error(40004);
    }
    let mut media: Option<(String, Bytes)> = None;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("media") {
            let name = field.file_name().unwrap_or_default().to_owned();
            let Ok(bytes) = field.bytes().await else {
                return error(40006);
            };
            media = Some((name, bytes));
        }
    }
    let Some((name, bytes)) = media else {
        return error(41005);
    };
    let extension = name
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !["png", "jpg", "jpeg", "bmp", "gif"].contains(&extension.as_str()) {
        return error(40005);
    }
    if bytes.is_empty() || bytes.len() > MAX_IMAGE {
        return error(40006);
    }
    let media_id = random_token("MEDIA");
    let mut account = lock(&wechat.state.account);
    account.images.push_back((media_id.clone(), bytes));
    if account.images.len() > KEPT {
        account.images.pop_front();
    }
    answer(&json!({
        "media_id": media_id,
        "url": format!("http://mmbiz.qpic.cn/mmbiz_png/{media_id}/0?wx_fmt={extension}"),
    }))
}
