//! A follower's conversation, on their page and on each of their messages' pages: what they sent and
//! every reply (passive, late, an operator's), newest last, and the box to answer while WeChat's 48-hour
//! window is open (docs/wechat.md §9). An answer is a `custom` outbox job: durable, retried, and shown
//! with its outcome.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::frame::{Frame, not_found, see_other};
use super::messages::{MessageRow, reply_summary};
use super::upload::Submitted;
use crate::media::{self, MediaError};
use crate::store::{Job, JobKind, JobState, MessageQuery};
use crate::time::{beijing_time, unix_now};
use crate::web::error::{AppError, ErrorPage};
use crate::web::state::AppState;
use crate::wechat::XmlFields;
use crate::wechat::reply::{Segment, segments};

/// How long after a follower's last interaction the account may write to them.
pub(crate) const WINDOW_SECS: i64 = 48 * 3600;
/// Messages and answers shown (each); the full history is on the message list.
const SHOWN: i64 = 30;
/// The longest answer accepted, in characters.
pub(crate) const MAX_TEXT_CHARS: usize = 2_000;
/// The longest `media_id` accepted (WeChat's are 64 characters or fewer).
const MAX_MEDIA_ID: usize = 128;

/// Who said something in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speaker {
    Follower,
    /// A reply rule's answer in the webhook's response.
    Passive,
    /// A slow rule's answer, through the outbox.
    Late,
    /// An operator's answer.
    Operator,
}

/// One line of the conversation.
pub(crate) struct Entry {
    at: i64,
    pub speaker: Speaker,
    pub time: String,
    /// The operator who wrote an answer.
    pub author: String,
    pub text: String,
    /// For answers through the outbox: sent, waiting, retrying or given up, with WeChat's reason.
    pub status: String,
    pub failed: bool,
    /// The message a follower's line links to.
    pub message_id: Option<i64>,
    /// The media_id of an image the account sent.
    pub image: Option<String>,
}

/// The conversation with one follower and whether the account may write to them now.
pub(crate) struct Conversation {
    pub openid: String,
    pub entries: Vec<Entry>,
    pub window_open: bool,
    /// The window in words: open until when, or since when it is closed.
    pub window: String,
    /// The message page the answer box sits on, if any (the answer then returns there).
    pub message_id: Option<i64>,
    pub max_chars: usize,
}

/// What a customer-service message says, for the conversation.
fn describe(message: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(message) else {
        return String::new();
    };
    let kind = value["msgtype"].as_str().unwrap_or_default();
    match kind {
        "text" => value["text"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        "image" => format!(
            "[图片 · image] {}",
            value["image"]["media_id"].as_str().unwrap_or_default()
        ),
        "news" => format!(
            "[图文 · news] {}",
            value["news"]["articles"][0]["title"]
                .as_str()
                .unwrap_or_default()
        ),
        other => format!("[{other}]"),
    }
}

/// An outbox job's outcome, for the person who wrote it.
fn status(job: &Job) -> String {
    let reason = job.last_error.as_deref().unwrap_or_default();
    match job.state {
        JobState::Done => "已发送 · sent".into(),
        JobState::Failed => format!("已放弃 · given up: {reason}"),
        JobState::Queued if job.attempts > 0 => format!("重试中 · retrying: {reason}"),
        JobState::Queued => "等待发送 · queued".into(),
        JobState::Sending => "发送中 · sending".into(),
        JobState::Cancelled => "已取消 · cancelled".into(),
    }
}

impl Entry {
    /// Who said it, as the page labels it.
    pub fn label(&self) -> String {
        match self.speaker {
            Speaker::Follower => "粉丝 · follower".into(),
            Speaker::Passive => "自动回复 · passive reply".into(),
            Speaker::Late => "稍后回复 · late reply".into(),
            Speaker::Operator => format!("{} · 人工回复 · operator", self.author),
        }
    }

    /// The text as WeChat shows it: the account's `<a href="http…">` markup becomes links; a follower's
    /// text stays text, whatever it holds.
    pub fn segments(&self) -> Vec<Segment> {
        if self.speaker == Speaker::Follower {
            vec![Segment {
                text: self.text.clone(),
                href: None,
            }]
        } else {
            segments(&self.text)
        }
    }

    /// The side of the conversation it sits on.
    pub fn side(&self) -> &'static str {
        if self.speaker == Speaker::Follower {
            "in"
        } else {
            "out"
        }
    }

    fn from_job(job: Job) -> Self {
        let what = job.sent.as_deref().or(job.payload.as_deref());
        let image = what
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
            .and_then(|v| v["image"]["media_id"].as_str().map(str::to_owned));
        let text = match what {
            Some(message) => describe(message),
            None => "（发送时按规则生成 · made from the rule when sent）".into(),
        };
        Self {
            at: job.created_at,
            speaker: if job.kind == JobKind::Custom {
                Speaker::Operator
            } else {
                Speaker::Late
            },
            time: beijing_time(job.created_at),
            status: status(&job),
            failed: job.state == JobState::Failed,
            author: job.author.unwrap_or_default(),
            text,
            message_id: job.message_id,
            image,
        }
    }
}

/// Whether the window is open at `now`, and the sentence that says so.
pub(crate) fn window(last_interaction: Option<i64>, now: i64) -> (bool, String) {
    match last_interaction {
        None => (
            false,
            "粉丝没有发过消息，不能主动发送 · the follower never wrote: WeChat lets the account write only within 48 hours of the follower's last message".into(),
        ),
        Some(at) if now < at + WINDOW_SECS => (
            true,
            format!(
                "可回复至 {} · open until then (48 hours after the follower's last message)",
                beijing_time(at + WINDOW_SECS)
            ),
        ),
        Some(at) => (
            false,
            format!(
                "48 小时窗口已于 {} 关闭 · the 48-hour window closed then: the follower last wrote at {}",
                beijing_time(at + WINDOW_SECS),
                beijing_time(at)
            ),
        ),
    }
}

/// The conversation with `openid`, answered from the page of `message_id` if given.
pub(crate) async fn load(
    app: &AppState,
    openid: &str,
    message_id: Option<i64>,
) -> Result<Conversation, AppError> {
    let messages = app
        .store
        .list_messages(&MessageQuery {
            openid: Some(openid.to_owned()),
            limit: SHOWN,
            ..MessageQuery::default()
        })
        .await?;
    let sent = app.store.messages_sent_to(openid, SHOWN).await?;
    let mut entries = Vec::with_capacity(messages.len() * 2 + sent.len());
    for record in &messages {
        let row = MessageRow::from(record);
        let at = record.message.received_at;
        entries.push(Entry {
            at,
            speaker: Speaker::Follower,
            time: row.time.clone(),
            author: String::new(),
            text: format!("[{}] {}", row.kind, row.summary),
            status: String::new(),
            failed: false,
            message_id: Some(record.id),
            image: None,
        });
        if !record.message.reply_xml.is_empty() {
            entries.push(Entry {
                at,
                speaker: Speaker::Passive,
                time: row.time,
                author: String::new(),
                text: reply_summary(&record.message.reply_xml),
                status: String::new(),
                failed: false,
                message_id: Some(record.id),
                image: XmlFields::parse(&record.message.reply_xml)
                    .ok()
                    .and_then(|f| f.get("Image/MediaId").map(str::to_owned)),
            });
        }
    }
    entries.extend(sent.into_iter().map(Entry::from_job));
    // Oldest first; a passive reply stays right after its message (the sort is stable).
    entries.sort_by_key(|e| e.at);
    let (window_open, window) = window(app.store.last_interaction(openid).await?, unix_now());
    Ok(Conversation {
        openid: openid.to_owned(),
        entries,
        window_open,
        window,
        message_id,
        max_chars: MAX_TEXT_CHARS,
    })
}

/// The answer box's form.
#[derive(Debug, Deserialize)]
pub(crate) struct AnswerForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    media_id: String,
    /// The message page the box was on.
    #[serde(default)]
    message: Option<i64>,
}

fn refused(status: StatusCode, zh: &str, en: &str, back: &str) -> AppError {
    ErrorPage::new(status, "不能发送 · Not sent", zh, en)
        .retry(back)
        .into()
}

/// An image that was refused before any call (400, or 413 over WeChat's size), or by WeChat (502).
pub(crate) fn upload_refused(e: MediaError, back: &str) -> AppError {
    match e {
        MediaError::Invalid(why) => refused(StatusCode::BAD_REQUEST, "图片不能使用。", &why, back),
        MediaError::TooLarge(_) => refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "图片太大。",
            &e.to_string(),
            back,
        ),
        MediaError::WeChat(e) => refused(
            StatusCode::BAD_GATEWAY,
            "微信没有接收图片。",
            &format!("WeChat refused the upload: {e}"),
            back,
        ),
        MediaError::Store(e) => e.into(),
    }
}

/// The customer-service message the form asks for, or why it cannot be sent.
pub(crate) fn message_of(
    openid: &str,
    text: &str,
    media_id: &str,
) -> Result<Value, (&'static str, String)> {
    let text = text.trim();
    let media_id = media_id.trim();
    match (text.is_empty(), media_id.is_empty()) {
        (true, true) => Err((
            "请输入回复内容或图片 media_id。",
            "Write an answer or give an image's media_id.".into(),
        )),
        (false, false) => Err((
            "文字和图片请分开发送。",
            "Send the text and the image separately.".into(),
        )),
        (false, true) if text.chars().count() > MAX_TEXT_CHARS => Err((
            "回复太长。",
            format!("The answer is longer than {MAX_TEXT_CHARS} characters."),
        )),
        (false, true) => {
            Ok(json!({"touser": openid, "msgtype": "text", "text": {"content": text}}))
        }
        (true, false)
            if media_id.len() > MAX_MEDIA_ID
                || !media_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Err((
                "media_id 格式不对。",
                "A media_id is letters, digits, - and _ only.".into(),
            ))
        }
        (true, false) => {
            Ok(json!({"touser": openid, "msgtype": "image", "image": {"media_id": media_id}}))
        }
    }
}

/// `POST /admin/users/{openid}/answer`: queues the operator's answer, if the window is open.
pub async fn answer(
    State(app): State<AppState>,
    frame: Frame,
    Path(openid): Path<String>,
    Submitted { form, image }: Submitted<AnswerForm>,
) -> Result<Response, AppError> {
    let back = match form.message {
        Some(id) => format!("/admin/messages/{id}#conversation"),
        None => format!("/admin/users/{}#conversation", urlencoding::encode(&openid)),
    };
    if app.store.user(&openid).await?.is_none() {
        return Err(not_found("粉丝"));
    }
    if image.is_some() && !(form.text.trim().is_empty() && form.media_id.trim().is_empty()) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "文字和图片请分开发送。",
            "Send the text and the image separately.",
            &back,
        ));
    }
    let (open, why) = window(app.store.last_interaction(&openid).await?, unix_now());
    if !open {
        return Err(refused(
            StatusCode::CONFLICT,
            "只能回复 48 小时内发过消息的粉丝。",
            &why,
            &back,
        ));
    }
    let message = match &image {
        // The image is checked, then uploaded as permanent material, then sent by its media_id.
        Some(upload) => {
            let media = media::upload(&app.store, &app.account, upload, &frame.nav.admin)
                .await
                .map_err(|e| upload_refused(e, &back))?;
            json!({"touser": openid, "msgtype": "image", "image": {"media_id": media.media_id}})
        }
        None => message_of(&openid, &form.text, &form.media_id)
            .map_err(|(zh, en)| refused(StatusCode::BAD_REQUEST, zh, &en, &back))?,
    };
    let job = app
        .store
        .queue_custom(&openid, &message.to_string(), &frame.nav.admin, None)
        .await?;
    app.outbox.wake();
    tracing::info!(job, admin = %frame.nav.admin, "operator answer queued");
    Ok(see_other(&back))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_a_customer_service_message_or_a_reason() {
        assert_eq!(
            message_of("o1", "  你好 <b>  ", "").unwrap(),
            json!({"touser": "o1", "msgtype": "text", "text": {"content": "你好 <b>"}})
        );
        assert_eq!(
            message_of("o1", "", "M-1_a").unwrap(),
            json!({"touser": "o1", "msgtype": "image", "image": {"media_id": "M-1_a"}})
        );
        assert!(message_of("o1", " ", "").is_err());
        assert!(message_of("o1", "a", "M").is_err());
        assert!(message_of("o1", "", "a/b").is_err());
        assert!(message_of("o1", &"长".repeat(MAX_TEXT_CHARS), "").is_ok());
        assert!(message_of("o1", &"长".repeat(MAX_TEXT_CHARS + 1), "").is_err());
    }

    #[test]
    fn the_window_is_open_for_48_hours_after_the_last_interaction() {
        assert!(!window(None, 1_000_000).0);
        assert!(window(Some(1_000_000), 1_000_000 + WINDOW_SECS - 1).0);
        assert!(!window(Some(1_000_000), 1_000_000 + WINDOW_SECS).0);
    }
}
