//! The account's bot: a reply rule can ask a URL for its answer (docs/bot.md). The request is the
//! message as JSON, signed as event webhooks are (Standard Webhooks, with the account's bot secret); the
//! answer is a reply in the rules' own JSON form: text, an image by `media_id`, or one news article.
//!
//! The webhook asks on a message's first try only and waits for the rule's budget; past it the answer
//! goes out later as a customer-service message (the outbox). A bot that fails or answers something
//! unusable gets the rule's fallback reply instead.

use std::time::Duration;

use crate::events::signature;
use crate::store::{Store, StoreError};
use crate::time::unix_now;
use crate::wechat::{Inbound, Reply};

/// The longest a bot is waited for in all (the budget is how long WeChat's answer waits for it).
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// A budget's bounds, in milliseconds: WeChat waits 5 s for the whole answer.
pub const MIN_BUDGET_MS: i64 = 100;
pub const MAX_BUDGET_MS: i64 = 4000;
pub const DEFAULT_BUDGET_MS: i64 = 2000;
/// The longest text a bot may answer, in characters (as the rule form).
const MAX_TEXT_CHARS: usize = 2000;
/// A bot's answer is small; a larger body is refused unread.
const MAX_ANSWER: usize = 64 * 1024;

/// A rule's bot: where to ask, and how long the passive reply waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotRule {
    pub url: String,
    pub budget: Duration,
}

/// Why a bot's answer was not used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BotError {
    #[error("the bot did not answer within {0} ms")]
    Timeout(u128),
    #[error("the bot could not be reached: {0}")]
    Unreachable(String),
    #[error("the bot answered HTTP {0}")]
    Status(u16),
    #[error("the bot's answer is unusable: {0}")]
    Unusable(String),
}

/// Asks bots, signing with the account's bot secret.
#[derive(Debug)]
pub struct Bots {
    http: reqwest::Client,
    secret: String,
}

impl Bots {
    /// The bot secret is generated once and shared by every instance.
    pub async fn load(store: &Store, http: reqwest::Client) -> Result<Self, StoreError> {
        let secret = store
            .setting_or_insert("bot_secret", signature::new_secret)
            .await?;
        Ok(Self { http, secret })
    }

    /// What requests to bots are signed with (shown to operators on the rule form).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Asks `bot` about `msg` and waits at most `limit`. `Ok(None)`: the bot has nothing to say.
    /// `id` is the same for every time one message is asked about (the webhook, then the outbox after
    /// a restart): a bot can deduplicate on it.
    pub async fn ask(
        &self,
        bot: &BotRule,
        msg: &Inbound,
        id: &str,
        limit: Duration,
    ) -> Result<Option<Reply>, BotError> {
        let body = question(msg).to_string();
        let now = unix_now();
        let sent = self
            .http
            .post(&bot.url)
            .timeout(limit)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", now.to_string())
            .header(
                "webhook-signature",
                signature::sign(&self.secret, id, now, body.as_bytes()),
            )
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(BotError::Timeout(limit.as_millis())),
            Err(e) => return Err(BotError::Unreachable(e.to_string())),
        };
        let status = response.status();
        if status == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(BotError::Status(status.as_u16()));
        }
        let mut answer = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    answer.extend_from_slice(&chunk);
                    if answer.len() > MAX_ANSWER {
                        return Err(BotError::Unusable("the answer is over 64 KiB".into()));
                    }
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(BotError::Timeout(limit.as_millis())),
                Err(e) => return Err(BotError::Unreachable(e.to_string())),
            }
        }
        usable(&answer).map(Some)
    }
}

/// The id a message is asked about under: the same on every try.
pub fn question_id(dedup_key: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "ask_{}",
        hex::encode(&Sha256::digest(dedup_key.as_bytes())[..12])
    )
}

/// The request's body: the message as events describe it (docs/events.md).
fn question(msg: &Inbound) -> serde_json::Value {
    crate::events::of_inbound(msg).map_or_else(
        || serde_json::json!({ "openid": msg.from, "msg_type": msg.msg_type() }),
        |e| e.data,
    )
}

/// A bot's answer as a reply, if it is one the account can send both passively and as a
/// customer-service message.
fn usable(answer: &[u8]) -> Result<Reply, BotError> {
    let unusable = |why: &str| Err(BotError::Unusable(why.to_owned()));
    let reply: Reply = match serde_json::from_slice(answer) {
        Ok(reply) => reply,
        Err(e) => return Err(BotError::Unusable(format!("not a reply: {e}"))),
    };
    match &reply {
        Reply::Text { content } if content.trim().is_empty() => unusable("the text is empty"),
        Reply::Text { content } if content.chars().count() > MAX_TEXT_CHARS => {
            unusable("the text is over 2,000 characters")
        }
        Reply::Text { .. } => Ok(reply),
        Reply::Image { media_id }
            if media_id.is_empty()
                || media_id.len() > 128
                || media_id.chars().any(char::is_whitespace) =>
        {
            unusable("the image has no usable media_id")
        }
        Reply::Image { .. } => Ok(reply),
        Reply::News { articles }
            if articles.len() == 1
                && !articles[0].title.trim().is_empty()
                && (articles[0].url.starts_with("https://")
                    || articles[0].url.starts_with("http://")) =>
        {
            Ok(reply)
        }
        Reply::News { .. } => unusable("news is one article with a title and an http(s) url"),
        other => Err(BotError::Unusable(format!(
            "{} answers are not supported (text, image or news)",
            other.msg_type()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_image_and_one_article_are_usable() {
        for ok in [
            r#"{"type":"text","content":"您好"}"#,
            r#"{"type":"image","media_id":"MEDIA_1"}"#,
            r#"{"type":"news","articles":[{"title":"t","description":"","pic_url":"","url":"https://a.example/"}]}"#,
        ] {
            assert!(usable(ok.as_bytes()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn anything_else_is_unusable() {
        for bad in [
            "not json",
            "{}",
            r#"{"type":"text","content":"  "}"#,
            r#"{"type":"image","media_id":""}"#,
            r#"{"type":"news","articles":[]}"#,
            r#"{"type":"news","articles":[{"title":"t","description":"","pic_url":"","url":"javascript:x"}]}"#,
            r#"{"type":"transfer_customer_service"}"#,
            r#"{"type":"voice","media_id":"m"}"#,
        ] {
            assert!(
                matches!(usable(bad.as_bytes()), Err(BotError::Unusable(_))),
                "{bad}"
            );
        }
        let long = format!(r#"{{"type":"text","content":"{}"}}"#, "字".repeat(2001));
        assert!(usable(long.as_bytes()).is_err());
    }

    #[test]
    fn a_message_is_asked_about_under_one_id() {
        assert_eq!(question_id("m:1"), question_id("m:1"));
        assert_ne!(question_id("m:1"), question_id("m:2"));
        assert!(question_id("m:1").starts_with("ask_"));
    }
}
