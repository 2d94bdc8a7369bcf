//! The follower chat at `/_sim/chat`: pick a sample follower, send a message or an event through the
//! real webhook (signed, and encrypted unless in plaintext mode, exactly as WeChat does), read the
//! account's answer as WeChat would show it. Customer-service messages the stand-in WeChat accepts show
//! up here too, and the pushed menu's CLICK buttons can be pressed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Form, Router};
use serde::Deserialize;
use serde_json::Value;

use super::followers::{FOLLOWERS, SampleFollower};
use super::wechat::{Delivery, FakeWeChat};
use crate::config::{Config, Secret};
use crate::time::unix_now;
use crate::web::error::AppError;
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};
use crate::wechat::MessageCrypto;
use crate::wechat::MessageMode;
use crate::wechat::push::{Push, check_reply};
use crate::wechat::reply::{Segment, segments};

/// The chat page.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_sim/chat", get(chat).post(send_chat))
        .route("/_sim/media/{media_id}", get(image))
}

/// The transcript keeps this many lines.
const TRANSCRIPT_LEN: usize = 40;

/// The account's name on WeChat's side (`ToUserName`) in what the chat sends.
const ACCOUNT: &str = "gh_demo00000000";

/// The account's webhook, called as WeChat calls it: signed, and encrypted unless in plaintext mode.
pub(crate) struct Webhook {
    url: String,
    token: Secret,
    mode: MessageMode,
    crypto: Option<MessageCrypto>,
    http: reqwest::Client,
}

impl Webhook {
    /// The webhook of `config`'s account, listening on `addr`.
    pub(crate) fn new(config: &Config, addr: std::net::SocketAddr) -> Self {
        Self {
            url: format!("http://{addr}/wechat"),
            token: config.token.clone(),
            mode: config.message_mode,
            crypto: config
                .aes_key
                .as_ref()
                .map(|(_, key)| MessageCrypto::new(key.clone(), config.appid.clone())),
            http: crate::upstream::client_builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// Posts `push`; the answer's status and body.
    async fn post(&self, push: &Push) -> reqwest::Result<(u16, String)> {
        let nonce: u32 = rand::random();
        let signed = push.sign(
            self.token.expose(),
            self.mode,
            self.crypto.as_ref(),
            &push.create_time.to_string(),
            &nonce.to_string(),
        );
        let response = self
            .http
            .post(signed.url(&self.url))
            .header(header::CONTENT_TYPE, "text/xml")
            .body(signed.body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.unwrap_or_default()))
    }
}

/// The transcript, for this process only, and the webhook the chat speaks to.
pub(crate) struct Chat {
    lines: Mutex<VecDeque<ChatLine>>,
    webhook: Webhook,
}

impl Chat {
    pub(crate) fn new(webhook: Webhook) -> Self {
        Self {
            lines: Mutex::default(),
            webhook,
        }
    }

    fn lines(&self) -> Vec<ChatLine> {
        self.lock().iter().cloned().collect()
    }

    fn add(&self, line: ChatLine) {
        let mut lines = self.lock();
        lines.push_back(line);
        while lines.len() > TRANSCRIPT_LEN {
            lines.pop_front();
        }
    }

    /// Tells the account that template message `msgid` reached `to` (docs/wechat.md §11).
    async fn report_delivery(&self, to: &str, msgid: u64) {
        let push = Push {
            to: ACCOUNT.into(),
            from: to.into(),
            create_time: unix_now(),
            msg_type: "event".into(),
            fields: vec![
                ("Event".into(), "TEMPLATESENDJOBFINISH".into()),
                ("MsgID".into(), msgid.to_string()),
                ("Status".into(), "success".into()),
            ],
        };
        match self.webhook.post(&push).await {
            Ok((200, _)) => {}
            Ok((status, body)) => {
                tracing::warn!(status, body, "the account refused a delivery report");
            }
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "a delivery report could not be posted")
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<ChatLine>> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Shows each customer-service and template message WeChat accepts as a line from the account. A
    /// template message's `TEMPLATESENDJOBFINISH` follows a second later, as WeChat reports delivery.
    pub fn delivery(self: &Arc<Self>) -> Delivery {
        let chat = Arc::clone(self);
        Arc::new(move |to: &str, message: &Value, msgid: Option<u64>| {
            let Some(follower) = FOLLOWERS.iter().find(|f| f.openid == to) else {
                return;
            };
            if let Some(msgid) = msgid {
                let chat = Arc::clone(&chat);
                let to = to.to_owned();
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    chat.report_delivery(&to, msgid).await;
                });
            }
            chat.add(ChatLine {
                follower: follower.nickname,
                sent: String::new(),
                answer: segments(&describe_custom(message)),
                problems: Vec::new(),
                millis: 0,
                image: message["image"]["media_id"].as_str().map(str::to_owned),
            });
        })
    }
}

/// A customer-service message as the follower would see it.
fn describe_custom(message: &Value) -> String {
    match message["msgtype"].as_str() {
        Some("text") => message["text"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        Some("news") => message["news"]["articles"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| format!("📰 {}", a["title"].as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => format!("[{other}]"),
        None => match message["template_id"].as_str() {
            Some(id) => template_card(id, &message["data"]),
            None => "[?]".into(),
        },
    }
}

/// A template message as a card: its title, then each field's value in the template's lines.
fn template_card(id: &str, data: &Value) -> String {
    let Some((_, title, content)) = super::wechat::templates::TEMPLATES
        .iter()
        .find(|(known, _, _)| *known == id)
    else {
        return format!("📋 {id}");
    };
    let mut card = format!("📋 {title}");
    for line in content.lines() {
        let mut text = line.to_owned();
        for name in crate::templates::fields(line) {
            let value = data[&name]["value"].as_str().unwrap_or_default();
            text = text.replace(&format!("{{{{{name}.DATA}}}}"), value);
        }
        card.push('\n');
        card.push_str(&text);
    }
    card
}

/// One line of the follower chat.
#[derive(Debug, Clone)]
pub(crate) struct ChatLine {
    pub follower: &'static str,
    /// What the follower sent; empty for a customer-service message the account sent on its own.
    pub sent: String,
    pub answer: Vec<Segment>,
    pub problems: Vec<String>,
    pub millis: u128,
    /// An image the account sent (its media_id at the stand-in WeChat).
    pub image: Option<String>,
}

#[derive(Template)]
#[template(path = "demo/chat.html")]
struct ChatTemplate {
    layout: Layout,
    followers: Vec<(usize, SampleFollower)>,
    chosen: usize,
    lines: Vec<ChatLine>,
    mode: &'static str,
    /// The pushed menu's CLICK buttons: (name, key).
    clicks: Vec<(String, String)>,
    /// The QR codes created in the admin, to scan: (scene, name).
    codes: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
struct ChatQuery {
    follower: Option<usize>,
}

/// The follower chat: pick a follower, send a message or an event, read the account's answer.
async fn chat(
    State(app): State<AppState>,
    Extension(chat): Extension<Arc<Chat>>,
    Extension(wechat): Extension<FakeWeChat>,
    Query(q): Query<ChatQuery>,
) -> Result<Response, AppError> {
    let lines = chat.lines();
    render(&ChatTemplate {
        layout: Layout::new(&app, false),
        followers: FOLLOWERS.iter().copied().enumerate().collect(),
        chosen: q.follower.unwrap_or(0).min(FOLLOWERS.len() - 1),
        lines,
        mode: app.config.message_mode.as_str(),
        clicks: menu_clicks(&wechat),
        codes: app
            .store
            .qr_codes()
            .await?
            .into_iter()
            .map(|c| (c.scene, c.name))
            .collect(),
    })
}

#[derive(Debug, Deserialize)]
struct ChatForm {
    follower: usize,
    kind: String,
    #[serde(default)]
    content: String,
}

/// Sends one message through the real webhook, signed and (unless in plaintext mode) encrypted.
async fn send_chat(
    State(app): State<AppState>,
    Extension(chat): Extension<Arc<Chat>>,
    Form(form): Form<ChatForm>,
) -> Result<Response, AppError> {
    let follower = FOLLOWERS
        .get(form.follower)
        .ok_or_else(|| AppError::bad_request("follower", "no such sample follower"))?;
    let now = unix_now();
    let (msg_type, fields, sent): (&str, Vec<(String, String)>, String) = match form.kind.as_str() {
        "subscribe" | "unsubscribe" => (
            "event",
            vec![
                ("Event".into(), form.kind.clone()),
                ("EventKey".into(), String::new()),
            ],
            format!("[{}]", form.kind),
        ),
        // A scan of a code made in the admin: by someone who does not follow yet (a subscribe with
        // `qrscene_` + scene), or by a follower (SCAN).
        "scan_subscribe" | "scan" => {
            let ticket = app
                .store
                .qr_code_by_scene(&form.content)
                .await?
                .map(|c| c.ticket)
                .unwrap_or_default();
            let subscribe = form.kind == "scan_subscribe";
            (
                "event",
                vec![
                    (
                        "Event".into(),
                        if subscribe { "subscribe" } else { "SCAN" }.into(),
                    ),
                    (
                        "EventKey".into(),
                        if subscribe {
                            format!("qrscene_{}", form.content)
                        } else {
                            form.content.clone()
                        },
                    ),
                    ("Ticket".into(), ticket),
                ],
                format!("[扫码 · scan {}]", form.content),
            )
        }
        "click" => (
            "event",
            vec![
                ("Event".into(), "CLICK".into()),
                ("EventKey".into(), form.content.clone()),
            ],
            format!("[menu CLICK {}]", form.content),
        ),
        _ => {
            let msg_id: u64 = rand::random_range(10_u64.pow(15)..10_u64.pow(16));
            (
                "text",
                vec![
                    ("Content".into(), form.content.clone()),
                    ("MsgId".into(), msg_id.to_string()),
                ],
                form.content.clone(),
            )
        }
    };
    let push = Push {
        to: ACCOUNT.into(),
        from: follower.openid.into(),
        create_time: now,
        msg_type: msg_type.into(),
        fields,
    };
    let started = Instant::now();
    let answer = chat.webhook.post(&push).await;
    let line = match answer {
        Ok((status, body)) => {
            let elapsed = started.elapsed();
            let verdict = check_reply(
                &push,
                chat.webhook.token.expose(),
                chat.webhook.crypto.as_ref(),
                status,
                elapsed,
                &body,
            );
            let answer = segments(&match &verdict.reply {
                _ if verdict.silent => "（没有回复 · no reply: success）".to_owned(),
                Some(reply) => describe_reply(reply),
                None => body,
            });
            ChatLine {
                follower: follower.nickname,
                sent,
                answer,
                image: verdict
                    .reply
                    .as_ref()
                    .and_then(|r| r.get("Image/MediaId").map(str::to_owned)),
                problems: verdict.problems,
                millis: elapsed.as_millis(),
            }
        }
        Err(e) => ChatLine {
            follower: follower.nickname,
            sent,
            answer: Vec::new(),
            problems: vec![format!(
                "the webhook could not be reached: {}",
                e.without_url()
            )],
            millis: started.elapsed().as_millis(),
            image: None,
        },
    };
    chat.add(line);
    Ok(Redirect::to(&format!("/_sim/chat?follower={}#latest", form.follower)).into_response())
}

/// `GET /_sim/media/{media_id}`: an image uploaded to the stand-in WeChat, for the chat to show.
async fn image(
    Extension(wechat): Extension<FakeWeChat>,
    axum::extract::Path(media_id): axum::extract::Path<String>,
) -> Response {
    match wechat.image(&media_id) {
        Some(bytes) => {
            let content_type = if bytes.starts_with(b"\x89PNG") {
                "image/png"
            } else {
                "image/jpeg"
            };
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

/// The CLICK buttons of the menu, for the chat to offer (name, key).
fn menu_clicks(wechat: &FakeWeChat) -> Vec<(String, String)> {
    wechat
        .menu()
        .and_then(|m| serde_json::from_value::<crate::upstream::menu::Menu>(m).ok())
        .map(|m| {
            m.click_keys()
                .into_iter()
                .map(|(key, name)| (name.to_owned(), key.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// A passive reply as the follower would see it.
fn describe_reply(reply: &crate::wechat::XmlFields) -> String {
    match reply.get("MsgType") {
        Some("text") => reply.text("Content"),
        Some("news") => {
            let titles: Vec<String> = reply
                .iter()
                .filter(|(k, _)| k.ends_with("/Title"))
                .map(|(_, v)| format!("📰 {v}"))
                .collect();
            titles.join("\n")
        }
        Some(other) => format!("[{other}]"),
        None => "[?]".into(),
    }
}
