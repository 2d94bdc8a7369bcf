//! What the account says: the reply chosen for each inbound message.

use crate::wechat::{Event, Inbound, MessageKind, Reply};

/// Chooses the reply to `msg`, or `None` for `success` (nothing to say).
///
/// `public_url` is the portal's base URL, linked from the welcome and help texts.
pub async fn reply_to(msg: &Inbound, public_url: &str) -> Option<Reply> {
    let guide = format!("{public_url}/");
    match &msg.kind {
        MessageKind::Event(Event::Subscribe { .. }) => Some(Reply::text(format!(
            "欢迎关注！🎉\n点击 <a href=\"{guide}\">这里</a> 打开我们的页面，授权后即可查看你的资料。"
        ))),
        MessageKind::Text { .. } => Some(Reply::text(format!(
            "你好！这里是自动回复。\n打开 <a href=\"{guide}\">我们的页面</a> 了解更多。"
        ))),
        _ => None,
    }
}
