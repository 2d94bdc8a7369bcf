//! `/admin/messages`: what followers sent and what the account answered, newest first.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::conversation::{self, Conversation};
use super::frame::{Frame, Nav, not_found, pretty_json};
use crate::store::{JobKind, MessageQuery, MessageRecord};
use crate::time::beijing_time;
use crate::web::error::AppError;
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};
use crate::wechat::XmlFields;

const PAGE_SIZE: i64 = 50;
/// Longest summary shown in a list cell.
const SUMMARY_CHARS: usize = 80;

/// The kinds the filter offers: message types, then `event:` + event (docs/wechat.md §3).
const KINDS: [(&str, &str); 18] = [
    ("text", "文本 · text"),
    ("image", "图片 · image"),
    ("voice", "语音 · voice"),
    ("video", "视频 · video"),
    ("shortvideo", "小视频 · shortvideo"),
    ("location", "位置 · location"),
    ("link", "链接 · link"),
    ("event", "全部事件 · all events"),
    ("event:subscribe", "关注 · subscribe"),
    ("event:unsubscribe", "取消关注 · unsubscribe"),
    ("event:SCAN", "扫码 · SCAN"),
    ("event:LOCATION", "上报位置 · LOCATION"),
    ("event:CLICK", "菜单点击 · CLICK"),
    ("event:VIEW", "菜单跳转 · VIEW"),
    ("event:scancode_push", "扫码推事件 · scancode_push"),
    ("event:scancode_waitmsg", "扫码等待 · scancode_waitmsg"),
    ("event:pic_sysphoto", "拍照 · pic_sysphoto"),
    ("event:location_select", "选择位置 · location_select"),
];

fn shorten(s: &str) -> String {
    let mut chars = s.chars();
    let short: String = chars.by_ref().take(SUMMARY_CHARS).collect();
    if chars.next().is_some() {
        format!("{short}…")
    } else {
        short
    }
}

/// One message as a list row.
pub(crate) struct MessageRow {
    pub id: i64,
    pub openid: String,
    pub time: String,
    pub kind: String,
    pub summary: String,
    pub reply: String,
}

/// What the message said: its text, or its distinctive fields.
fn summary(fields: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(fields)
    else {
        return String::new();
    };
    if let Some(serde_json::Value::String(content)) = map.get("Content") {
        return shorten(content);
    }
    const ENVELOPE: [&str; 6] = [
        "ToUserName",
        "FromUserName",
        "CreateTime",
        "MsgType",
        "MsgId",
        "Event",
    ];
    let rest: Vec<String> = map
        .iter()
        .filter(|(k, _)| !ENVELOPE.contains(&k.as_str()))
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    shorten(&rest.join(" "))
}

/// What the account answered: `success` (nothing), or the reply's type and text or title.
pub(crate) fn reply_summary(reply_xml: &str) -> String {
    if reply_xml.is_empty() {
        return "success（不回复）".into();
    }
    let Ok(fields) = XmlFields::parse(reply_xml) else {
        return "（无法解析 · unreadable）".into();
    };
    let msg_type = fields.text("MsgType");
    let what = fields
        .get("Content")
        .or_else(|| fields.get("Articles/item/Title"))
        .or_else(|| fields.get("Image/MediaId"))
        .unwrap_or_default();
    shorten(&format!("[{msg_type}] {what}"))
}

impl From<&MessageRecord> for MessageRow {
    fn from(r: &MessageRecord) -> Self {
        let m = &r.message;
        Self {
            id: r.id,
            openid: m.openid.clone(),
            time: beijing_time(m.received_at),
            kind: match &m.event {
                Some(event) => format!("event · {event}"),
                None => m.msg_type.clone(),
            },
            summary: summary(&m.fields),
            reply: reply_summary(&m.reply_xml),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ListParams {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    openid: String,
    before: Option<i64>,
}

impl ListParams {
    fn query(&self) -> MessageQuery {
        let (msg_type, event) = match self.kind.split_once(':') {
            Some((t, e)) => (Some(t.to_owned()), Some(e.to_owned())),
            None if self.kind.is_empty() => (None, None),
            None => (Some(self.kind.clone()), None),
        };
        MessageQuery {
            msg_type,
            event,
            openid: Some(self.openid.trim().to_owned()).filter(|o| !o.is_empty()),
            before: self.before,
            limit: PAGE_SIZE + 1,
        }
    }

    fn link(&self, before: Option<i64>) -> String {
        let before = before.map(|b| b.to_string()).unwrap_or_default();
        let pairs = [
            ("kind", self.kind.as_str()),
            ("openid", self.openid.trim()),
            ("before", &before),
        ];
        let pairs: Vec<_> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "admin/messages.html")]
struct ListTemplate {
    layout: Layout,
    nav: Nav,
    params: ListParams,
    kinds: &'static [(&'static str, &'static str)],
    rows: Vec<MessageRow>,
    next: Option<String>,
    first: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    frame: Frame,
    Query(params): Query<ListParams>,
) -> Result<Response, AppError> {
    let mut records = app.store.list_messages(&params.query()).await?;
    let more = records.len() as i64 > PAGE_SIZE;
    records.truncate(PAGE_SIZE as usize);
    let next = records
        .last()
        .filter(|_| more)
        .map(|r| format!("/admin/messages?{}", params.link(Some(r.id))));
    render(&ListTemplate {
        layout: frame.layout,
        nav: frame.nav,
        kinds: &KINDS,
        rows: records.iter().map(MessageRow::from).collect(),
        next,
        first: params
            .before
            .map(|_| format!("/admin/messages?{}", params.link(None))),
        params,
    })
}

#[derive(Template)]
#[template(path = "admin/message.html")]
struct DetailTemplate {
    layout: Layout,
    nav: Nav,
    row: MessageRow,
    dedup_key: String,
    created_at: String,
    encrypted: bool,
    fields: String,
    raw_xml: String,
    reply_xml: String,
    /// Work the message queued (a late reply, follower info): (kind, state, attempts, reason).
    jobs: Vec<(bool, &'static str, i64, String)>,
    conversation: Conversation,
}

pub async fn detail(
    State(app): State<AppState>,
    frame: Frame,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let record = app
        .store
        .message(id)
        .await?
        .ok_or_else(|| not_found("消息"))?;
    let m = &record.message;
    let fields = pretty_json(&m.fields);
    let jobs = app
        .store
        .jobs_of_message(id)
        .await?
        .into_iter()
        .map(|j| {
            (
                j.kind == JobKind::Reply,
                j.state.as_str(),
                j.attempts,
                j.last_error.unwrap_or_default(),
            )
        })
        .collect();
    let conversation = conversation::load(&app, &m.openid, Some(id)).await?;
    render(&DetailTemplate {
        conversation,
        jobs,
        layout: frame.layout,
        nav: frame.nav,
        row: MessageRow::from(&record),
        dedup_key: m.dedup_key.clone(),
        created_at: beijing_time(m.created_at),
        encrypted: m.encrypted,
        fields,
        raw_xml: m.raw_xml.clone(),
        reply_xml: m.reply_xml.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_show_text_or_the_distinctive_fields() {
        assert_eq!(summary(r#"{"MsgType":"text","Content":"你好"}"#), "你好");
        assert_eq!(
            summary(r#"{"MsgType":"event","Event":"CLICK","EventKey":"V1001"}"#),
            "EventKey=V1001"
        );
        assert_eq!(
            shorten(&"字".repeat(100)).chars().count(),
            SUMMARY_CHARS + 1
        );
        assert_eq!(reply_summary(""), "success（不回复）");
        assert_eq!(
            reply_summary(
                "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content></xml>"
            ),
            "[text] hi"
        );
    }

    #[test]
    fn the_kind_filter_splits_type_and_event() {
        let p = ListParams {
            kind: "event:CLICK".into(),
            ..ListParams::default()
        };
        let q = p.query();
        assert_eq!(
            (q.msg_type.as_deref(), q.event.as_deref()),
            (Some("event"), Some("CLICK"))
        );
    }
}
