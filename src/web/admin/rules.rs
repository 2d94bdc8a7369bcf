//! `/admin/replies`: the welcome reply, the default reply and keyword rules, each answering with text,
//! a news article or an image; any of them can also answer a menu CLICK key. Every edit reloads the
//! webhook's rule cache before the page returns.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::frame::{Frame, Nav, not_found, see_other};
use crate::replies::GUIDE_URL;
use crate::store::{MatchMode, Move, ReplyRule, RuleEdit, RuleKind};
use crate::web::error::AppError;
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};
use crate::wechat::{Article, Reply};

/// WeChat's longest menu key, in bytes.
const MAX_CLICK_KEY: usize = 128;
const MAX_KEYWORD_CHARS: usize = 60;
const MAX_TEXT_CHARS: usize = 2000;
const MAX_TITLE_CHARS: usize = 64;
const MAX_DESCRIPTION_CHARS: usize = 120;

/// The rule form, as posted and as shown.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RuleForm {
    #[serde(default)]
    match_mode: String,
    #[serde(default)]
    keyword: String,
    #[serde(default)]
    click_key: String,
    /// A checkbox: present when ticked.
    enabled: Option<String>,
    /// A checkbox: deliver after the 5-second window, as a customer-service message.
    slow: Option<String>,
    #[serde(default)]
    reply_type: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    pic_url: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    media_id: String,
}

fn web_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://") || url.starts_with(GUIDE_URL)
}

impl RuleForm {
    /// The form filled from a stored rule.
    fn of(rule: &ReplyRule) -> Self {
        let mut form = Self {
            match_mode: rule.match_mode.as_str().to_owned(),
            keyword: rule.keyword.clone().unwrap_or_default(),
            click_key: rule.click_key.clone().unwrap_or_default(),
            enabled: rule.enabled.then(|| "on".to_owned()),
            slow: rule.slow.then(|| "on".to_owned()),
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
    fn validate(&self, kind: RuleKind) -> Result<RuleEdit, Vec<String>> {
        let keyword_rule = kind == RuleKind::Keyword;
        let mut problems = Vec::new();
        let keyword = self.keyword.trim();
        let click_key = self.click_key.trim();
        let chars = |s: &str| s.chars().count();
        let match_mode = MatchMode::parse(&self.match_mode);
        if match_mode.is_none() && keyword_rule {
            problems.push("请选择匹配方式 · choose exact or contains.".to_owned());
        }
        if keyword_rule && keyword.is_empty() && click_key.is_empty() {
            problems.push(
                "关键词规则需要关键词或菜单 KEY · a keyword rule needs a keyword or a CLICK key."
                    .into(),
            );
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
            reply: serde_json::to_string(&reply).expect("a reply serializes"),
            enabled: self.enabled.is_some(),
            slow: self.slow.is_some(),
        })
    }
}

fn kind_label(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::Welcome => "被关注回复 · welcome",
        RuleKind::Default => "收到消息回复 · default",
        RuleKind::Keyword => "关键词回复 · keyword",
    }
}

/// One rule as a list row.
struct RuleRow {
    id: i64,
    kind: &'static str,
    kind_label: &'static str,
    matching: String,
    click_key: String,
    reply: String,
    enabled: bool,
    slow: bool,
}

impl From<&ReplyRule> for RuleRow {
    fn from(r: &ReplyRule) -> Self {
        let reply = match serde_json::from_str::<Reply>(&r.reply) {
            Ok(Reply::Text { content }) => format!("[文本] {content}"),
            Ok(Reply::News { articles }) => format!(
                "[图文] {}",
                articles
                    .first()
                    .map(|a| a.title.as_str())
                    .unwrap_or_default()
            ),
            Ok(Reply::Image { media_id }) => format!("[图片] {media_id}"),
            Ok(other) => format!("[{}]", other.msg_type()),
            Err(_) => "（无法读取 · unreadable）".into(),
        };
        Self {
            id: r.id,
            kind: r.kind.as_str(),
            kind_label: kind_label(r.kind),
            matching: match (&r.keyword, r.match_mode) {
                (Some(k), MatchMode::Contains) => format!("包含 · contains “{k}”"),
                (Some(k), _) => format!("等于 · is “{k}”"),
                (None, _) => String::new(),
            },
            click_key: r.click_key.clone().unwrap_or_default(),
            reply,
            enabled: r.enabled,
            slow: r.slow,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/replies.html")]
struct ListTemplate {
    layout: Layout,
    nav: Nav,
    fixed: Vec<RuleRow>,
    keywords: Vec<RuleRow>,
}

pub async fn list(State(app): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    let rules = app.store.reply_rules().await?;
    let (keywords, fixed): (Vec<_>, Vec<_>) =
        rules.iter().partition(|r| r.kind == RuleKind::Keyword);
    render(&ListTemplate {
        layout: frame.layout,
        nav: frame.nav,
        fixed: fixed.into_iter().map(RuleRow::from).collect(),
        keywords: keywords.into_iter().map(RuleRow::from).collect(),
    })
}

#[derive(Template)]
#[template(path = "admin/rule.html")]
struct FormTemplate {
    layout: Layout,
    nav: Nav,
    /// `None` for a new keyword rule.
    id: Option<i64>,
    keyword_rule: bool,
    kind_label: &'static str,
    form: RuleForm,
    problems: Vec<String>,
}

fn form_page(
    frame: Frame,
    id: Option<i64>,
    kind: RuleKind,
    form: RuleForm,
    problems: Vec<String>,
) -> Result<Response, AppError> {
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = render(&FormTemplate {
        layout: frame.layout,
        nav: frame.nav,
        id,
        keyword_rule: kind == RuleKind::Keyword,
        kind_label: kind_label(kind),
        form,
        problems,
    })?;
    Ok((status, page).into_response())
}

pub(crate) async fn new_rule(frame: Frame) -> Result<Response, AppError> {
    let form = RuleForm {
        match_mode: MatchMode::Exact.as_str().into(),
        reply_type: "text".into(),
        enabled: Some("on".into()),
        ..RuleForm::default()
    };
    form_page(frame, None, RuleKind::Keyword, form, Vec::new())
}

/// The message shown when a CLICK key is already bound to another rule.
fn conflict() -> Vec<String> {
    vec![
        "这个菜单 KEY 已绑定到另一条规则 · this CLICK key is already bound to another rule.".into(),
    ]
}

pub async fn create(
    State(app): State<AppState>,
    frame: Frame,
    Form(form): Form<RuleForm>,
) -> Result<Response, AppError> {
    let edit = match form.validate(RuleKind::Keyword) {
        Ok(edit) => edit,
        Err(problems) => return form_page(frame, None, RuleKind::Keyword, form, problems),
    };
    match app.store.add_keyword_rule(&edit).await {
        Ok(id) => tracing::info!(rule = id, admin = frame.nav.admin, "keyword rule added"),
        Err(e) if e.is_conflict() => {
            return form_page(frame, None, RuleKind::Keyword, form, conflict());
        }
        Err(e) => return Err(e.into()),
    }
    app.replies.reload().await?;
    Ok(see_other("/admin/replies"))
}

async fn rule(app: &AppState, id: i64) -> Result<ReplyRule, AppError> {
    app.store
        .reply_rule(id)
        .await?
        .ok_or_else(|| not_found("规则"))
}

pub(crate) async fn edit(
    State(app): State<AppState>,
    frame: Frame,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let rule = rule(&app, id).await?;
    form_page(frame, Some(id), rule.kind, RuleForm::of(&rule), Vec::new())
}

pub async fn update(
    State(app): State<AppState>,
    frame: Frame,
    Path(id): Path<i64>,
    Form(form): Form<RuleForm>,
) -> Result<Response, AppError> {
    let rule = rule(&app, id).await?;
    let edit = match form.validate(rule.kind) {
        Ok(edit) => edit,
        Err(problems) => return form_page(frame, Some(id), rule.kind, form, problems),
    };
    match app.store.update_rule(id, &edit).await {
        Ok(_) => tracing::info!(rule = id, admin = frame.nav.admin, "reply rule changed"),
        Err(e) if e.is_conflict() => {
            return form_page(frame, Some(id), rule.kind, form, conflict());
        }
        Err(e) => return Err(e.into()),
    }
    app.replies.reload().await?;
    Ok(see_other("/admin/replies"))
}

#[derive(Debug, Deserialize)]
pub(crate) struct MoveForm {
    #[serde(default)]
    direction: String,
}

pub(crate) async fn move_rule(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    Form(form): Form<MoveForm>,
) -> Result<Response, AppError> {
    let direction = match form.direction.as_str() {
        "up" => Move::Up,
        "down" => Move::Down,
        _ => {
            return Err(AppError::bad_request(
                "direction",
                "direction must be up or down",
            ));
        }
    };
    app.store.move_rule(id, direction).await?;
    app.replies.reload().await?;
    Ok(see_other("/admin/replies"))
}

pub async fn delete(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    if !app.store.delete_rule(id).await? {
        return Err(not_found("关键词规则"));
    }
    app.replies.reload().await?;
    Ok(see_other("/admin/replies"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_form(content: &str) -> RuleForm {
        RuleForm {
            match_mode: MatchMode::Exact.as_str().into(),
            keyword: "价格".into(),
            reply_type: "text".into(),
            content: content.into(),
            enabled: Some("on".into()),
            ..RuleForm::default()
        }
    }

    #[test]
    fn a_valid_form_becomes_the_stored_reply() {
        let edit = text_form("a ]]> b\r\nc")
            .validate(RuleKind::Keyword)
            .unwrap();
        let reply: Reply = serde_json::from_str(&edit.reply).unwrap();
        assert_eq!(reply, Reply::text("a ]]> b\nc"));
        assert_eq!(edit.keyword.as_deref(), Some("价格"));
        assert!(edit.enabled);
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let mut form = text_form("");
        form.keyword = String::new();
        form.match_mode = "regex".into();
        let problems = form.validate(RuleKind::Keyword).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");

        let news = RuleForm {
            reply_type: "news".into(),
            url: "javascript:alert(1)".into(),
            ..text_form("")
        };
        let problems = news.validate(RuleKind::Keyword).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("http(s) URL")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_stored_rule_fills_the_form_back() {
        let edit = RuleForm {
            reply_type: "news".into(),
            title: "标题".into(),
            url: "https://example.com/a".into(),
            ..text_form("")
        }
        .validate(RuleKind::Keyword)
        .unwrap();
        let rule = ReplyRule {
            id: 1,
            kind: RuleKind::Keyword,
            position: 1,
            match_mode: edit.match_mode,
            keyword: edit.keyword,
            click_key: None,
            reply: edit.reply,
            enabled: true,
            updated_at: 0,
            slow: false,
        };
        let form = RuleForm::of(&rule);
        assert_eq!(
            (form.reply_type.as_str(), form.title.as_str()),
            ("news", "标题")
        );
    }
}
