//! The rule form: as posted, as filled from a stored rule, and checked into a [`RuleEdit`].

use serde::Deserialize;

use crate::bot::{DEFAULT_BUDGET_MS, MAX_BUDGET_MS, MIN_BUDGET_MS};
use crate::replies::GUIDE_URL;
use crate::store::{MatchMode, ReplyRule, RuleEdit, RuleKind};
use crate::wechat::{Article, Reply};

/// WeChat's longest menu key, in bytes.
const MAX_CLICK_KEY: usize = 128;
/// WeChat's longest string scene, in bytes.
pub(crate) const MAX_SCENE: usize = 64;
const MAX_KEYWORD_CHARS: usize = 60;
const MAX_TEXT_CHARS: usize = 2000;
const MAX_TITLE_CHARS: usize = 64;
const MAX_DESCRIPTION_CHARS: usize = 120;

/// The rule form, as posted and as shown.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RuleForm {
    #[serde(default)]
    pub(super) match_mode: String,
    #[serde(default)]
    pub(super) keyword: String,
    #[serde(default)]
    pub(super) click_key: String,
    /// A checkbox: present when ticked.
    pub(super) enabled: Option<String>,
    /// A checkbox: deliver after the 5-second window, as a customer-service message.
    pub(super) slow: Option<String>,
    #[serde(default)]
    pub(super) reply_type: String,
    #[serde(default)]
    pub(super) content: String,
    #[serde(default)]
    pub(super) title: String,
    #[serde(default)]
    pub(super) description: String,
    #[serde(default)]
    pub(super) pic_url: String,
    #[serde(default)]
    pub(super) url: String,
    #[serde(default)]
    pub(super) media_id: String,
    /// The scene of the QR code whose scans the rule answers.
    #[serde(default)]
    pub(super) qr_scene: String,
    /// The bot to ask (the reply is then the fallback), and how long the passive reply waits for it.
    #[serde(default)]
    pub(super) bot_url: String,
    #[serde(default)]
    pub(super) bot_budget_ms: String,
}

fn web_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://") || url.starts_with(GUIDE_URL)
}

impl RuleForm {
    /// The form filled from a stored rule.
    pub(super) fn of(rule: &ReplyRule) -> Self {
        let mut form = Self {
            match_mode: rule.match_mode.as_str().to_owned(),
            keyword: rule.keyword.clone().unwrap_or_default(),
            click_key: rule.click_key.clone().unwrap_or_default(),
            qr_scene: rule.qr_scene.clone().unwrap_or_default(),
            enabled: rule.enabled.then(|| "on".to_owned()),
            slow: rule.slow.then(|| "on".to_owned()),
            bot_url: rule.bot_url.clone().unwrap_or_default(),
            bot_budget_ms: rule.bot_budget_ms.to_string(),
            ..Self::default()
        };
        match serde_json::from_str::<Reply>(&rule.reply) {
            Ok(Reply::Text { content }) => {
                form.reply_type = "text".into();
                form.content = content;
            }
            Ok(Reply::Image { media_id }) => {
                form.reply_type = "image".into();
                form.media_id = media_id;
            }
            Ok(Reply::News { articles }) => {
                form.reply_type = "news".into();
                if let Some(a) = articles.into_iter().next() {
                    (form.title, form.description, form.pic_url, form.url) =
                        (a.title, a.description, a.pic_url, a.url);
                }
            }
            // Other types are not edited here; the form starts as text.
            _ => form.reply_type = "text".into(),
        }
        form
    }

    /// The edit this form asks for, or what is wrong with it (every problem at once).
    pub(super) fn validate(&self, kind: RuleKind) -> Result<RuleEdit, Vec<String>> {
        let keyword_rule = kind == RuleKind::Keyword;
        let mut problems = Vec::new();
        let keyword = self.keyword.trim();
        let click_key = self.click_key.trim();
        let qr_scene = self.qr_scene.trim();
        let chars = |s: &str| s.chars().count();
        let match_mode = MatchMode::from_text(&self.match_mode);
        if match_mode.is_none() && keyword_rule {
            problems.push("请选择匹配方式 · choose exact or contains.".to_owned());
        }
        if keyword_rule && keyword.is_empty() && click_key.is_empty() && qr_scene.is_empty() {
            problems.push(
                "关键词规则需要关键词、菜单 KEY 或二维码 · a keyword rule needs a keyword, a CLICK key or a QR code."
                    .into(),
            );
        }
        if qr_scene.len() > MAX_SCENE || qr_scene.chars().any(char::is_whitespace) {
            problems.push(format!(
                "二维码场景值最多 {MAX_SCENE} 字节且不含空格 · a scene is at most {MAX_SCENE} bytes, without spaces."
            ));
        }
        if chars(keyword) > MAX_KEYWORD_CHARS {
            problems.push(format!(
                "关键词最多 {MAX_KEYWORD_CHARS} 个字 · the keyword is too long."
            ));
        }
        if click_key.len() > MAX_CLICK_KEY || click_key.chars().any(char::is_whitespace) {
            problems.push(format!(
                "菜单 KEY 最多 {MAX_CLICK_KEY} 字节且不含空格 · a CLICK key is at most {MAX_CLICK_KEY} bytes, without spaces."
            ));
        }
        let bot_url = self.bot_url.trim();
        if !bot_url.is_empty()
            && let Err(why) = crate::events::endpoints::check_url(bot_url)
        {
            problems.push(format!("机器人地址不对 · the bot URL: {why}."));
        }
        let bot_budget_ms = match self.bot_budget_ms.trim() {
            "" => DEFAULT_BUDGET_MS,
            v => match v.parse::<i64>() {
                Ok(ms) if (MIN_BUDGET_MS..=MAX_BUDGET_MS).contains(&ms) => ms,
                _ => {
                    problems.push(format!(
                        "等待时间为 {MIN_BUDGET_MS}–{MAX_BUDGET_MS} 毫秒 · the budget is {MIN_BUDGET_MS} to {MAX_BUDGET_MS} ms."
                    ));
                    DEFAULT_BUDGET_MS
                }
            },
        };
        let reply = match self.reply_type.as_str() {
            "text" => {
                if self.content.trim().is_empty() {
                    problems.push("请填写回复内容 · the text is empty.".into());
                } else if chars(&self.content) > MAX_TEXT_CHARS {
                    problems.push(format!(
                        "文本最多 {MAX_TEXT_CHARS} 个字 · the text is too long."
                    ));
                }
                Reply::text(self.content.replace("\r\n", "\n"))
            }
            "news" => {
                let (title, url, pic_url) =
                    (self.title.trim(), self.url.trim(), self.pic_url.trim());
                if title.is_empty() || chars(title) > MAX_TITLE_CHARS {
                    problems.push(format!("图文标题必填，最多 {MAX_TITLE_CHARS} 个字 · the title is required, at most {MAX_TITLE_CHARS} characters."));
                }
                if chars(&self.description) > MAX_DESCRIPTION_CHARS {
                    problems.push(format!(
                        "描述最多 {MAX_DESCRIPTION_CHARS} 个字 · the description is too long."
                    ));
                }
                if !web_url(url) {
                    problems.push(
                        "链接须以 http:// 或 https:// 开头 · the link must be an http(s) URL."
                            .into(),
                    );
                }
                if !pic_url.is_empty() && !web_url(pic_url) {
                    problems.push("图片地址须以 http:// 或 https:// 开头 · the picture must be an http(s) URL.".into());
                }
                Reply::News {
                    articles: vec![Article {
                        title: title.to_owned(),
                        description: self.description.trim().to_owned(),
                        pic_url: pic_url.to_owned(),
                        url: url.to_owned(),
                    }],
                }
            }
            "image" => {
                let media_id = self.media_id.trim();
                if media_id.is_empty()
                    || media_id.len() > 128
                    || media_id.chars().any(char::is_whitespace)
                {
                    problems.push(
                        "请填写图片的 media_id（素材管理中可查）· the image needs its media_id."
                            .into(),
                    );
                }
                Reply::Image {
                    media_id: media_id.to_owned(),
                }
            }
            _ => {
                problems.push("请选择回复类型 · choose text, news or image.".into());
                Reply::text("")
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(RuleEdit {
            match_mode: match_mode
                .filter(|_| keyword_rule)
                .unwrap_or(MatchMode::Exact),
            keyword: Some(keyword.to_owned()).filter(|k| !k.is_empty() && keyword_rule),
            click_key: Some(click_key.to_owned()).filter(|k| !k.is_empty()),
            qr_scene: Some(qr_scene.to_owned()).filter(|k| !k.is_empty()),
            reply: serde_json::to_string(&reply).expect("a reply serializes"),
            enabled: self.enabled.is_some(),
            slow: self.slow.is_some(),
            bot_url: Some(bot_url.to_owned()).filter(|u| !u.is_empty()),
            bot_budget_ms,
        })
    }
}
