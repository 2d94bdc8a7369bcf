//! `/admin/replies`: the welcome reply, the default reply and keyword rules, each answering with text,
//! a news article or an image; any of them can also answer a menu CLICK key and the scans of a QR code. Every edit reloads the
//! webhook's rule cache before the page returns.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::frame::{Frame, Nav, not_found, see_other};
use super::upload::Submitted;
use crate::media::{self, MediaError};
use crate::store::{MatchMode, Move, ReplyRule, RuleKind};
use crate::web::error::AppError;
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};
use crate::wechat::Reply;

mod form;

use form::RuleForm;

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
        let fallback = match serde_json::from_str::<Reply>(&r.reply) {
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
        let reply = match &r.bot_url {
            Some(url) => format!("[机器人 · bot] {url} · 备用 · fallback {fallback}"),
            None => fallback,
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
    /// The QR codes a rule can be bound to: (scene, name).
    codes: Vec<(String, String)>,
    /// What requests to bots are signed with.
    bot_secret: String,
    bot_budget: (i64, i64),
}

async fn form_page(
    app: &AppState,
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
    let mut codes: Vec<(String, String)> = app
        .store
        .qr_codes()
        .await?
        .into_iter()
        .map(|c| (c.scene, c.name))
        .collect();
    if !form.qr_scene.is_empty() && !codes.iter().any(|(scene, _)| *scene == form.qr_scene) {
        codes.push((form.qr_scene.clone(), "（未知 · unknown code）".into()));
    }
    let page = render(&FormTemplate {
        layout: frame.layout,
        nav: frame.nav,
        id,
        keyword_rule: kind == RuleKind::Keyword,
        kind_label: kind_label(kind),
        form,
        problems,
        bot_secret: app.bots.secret().to_owned(),
        bot_budget: (crate::bot::MIN_BUDGET_MS, crate::bot::MAX_BUDGET_MS),
        codes,
    })?;
    Ok((status, page).into_response())
}

pub(crate) async fn new_rule(
    State(app): State<AppState>,
    frame: Frame,
) -> Result<Response, AppError> {
    let form = RuleForm {
        match_mode: MatchMode::Exact.as_str().into(),
        reply_type: "text".into(),
        enabled: Some("on".into()),
        ..RuleForm::default()
    };
    form_page(&app, frame, None, RuleKind::Keyword, form, Vec::new()).await
}

/// The message shown when a CLICK key is already bound to another rule.
fn conflict() -> Vec<String> {
    vec![
        "这个菜单 KEY 或二维码已绑定到另一条规则 · this CLICK key or QR code is already bound to another rule.".into(),
    ]
}

/// The form with an uploaded image's media_id filled in (the image checked, then uploaded as
/// permanent material), or the form and why the image was refused.
async fn with_image(
    app: &AppState,
    admin: &str,
    Submitted { mut form, image }: Submitted<RuleForm>,
) -> Result<Result<RuleForm, (RuleForm, Vec<String>)>, AppError> {
    let Some(upload) = image else {
        return Ok(Ok(form));
    };
    if form.reply_type != "image" {
        return Ok(Err((
            form,
            vec!["上传图片请选择“图片”回复 · an uploaded image needs the image reply type.".into()],
        )));
    }
    match media::upload(&app.store, &app.account, &upload, admin).await {
        Ok(media) => {
            form.media_id = media.media_id;
            Ok(Ok(form))
        }
        Err(MediaError::Store(e)) => Err(e.into()),
        Err(e) => Ok(Err((form, vec![format!("图片 · image: {e}")]))),
    }
}

pub async fn create(
    State(app): State<AppState>,
    frame: Frame,
    submitted: Submitted<RuleForm>,
) -> Result<Response, AppError> {
    let form = match with_image(&app, &frame.nav.admin, submitted).await? {
        Ok(form) => form,
        Err((form, problems)) => {
            return form_page(&app, frame, None, RuleKind::Keyword, form, problems).await;
        }
    };
    let edit = match form.validate(RuleKind::Keyword) {
        Ok(edit) => edit,
        Err(problems) => {
            return form_page(&app, frame, None, RuleKind::Keyword, form, problems).await;
        }
    };
    match app.store.add_keyword_rule(&edit).await {
        Ok(id) => tracing::info!(rule = id, admin = frame.nav.admin, "keyword rule added"),
        Err(e) if e.is_conflict() => {
            return form_page(&app, frame, None, RuleKind::Keyword, form, conflict()).await;
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
    form_page(
        &app,
        frame,
        Some(id),
        rule.kind,
        RuleForm::of(&rule),
        Vec::new(),
    )
    .await
}

pub async fn update(
    State(app): State<AppState>,
    frame: Frame,
    Path(id): Path<i64>,
    submitted: Submitted<RuleForm>,
) -> Result<Response, AppError> {
    let rule = rule(&app, id).await?;
    let form = match with_image(&app, &frame.nav.admin, submitted).await? {
        Ok(form) => form,
        Err((form, problems)) => {
            return form_page(&app, frame, Some(id), rule.kind, form, problems).await;
        }
    };
    let edit = match form.validate(rule.kind) {
        Ok(edit) => edit,
        Err(problems) => return form_page(&app, frame, Some(id), rule.kind, form, problems).await,
    };
    match app.store.update_rule(id, &edit).await {
        Ok(_) => tracing::info!(rule = id, admin = frame.nav.admin, "reply rule changed"),
        Err(e) if e.is_conflict() => {
            return form_page(&app, frame, Some(id), rule.kind, form, conflict()).await;
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
            qr_scene: Some("q1".into()),
            bot_url: Some("https://bot.example/ask".into()),
            bot_budget_ms: 1500,
        };
        let form = RuleForm::of(&rule);
        assert_eq!(form.qr_scene, "q1");
        assert_eq!(
            (form.bot_url.as_str(), form.bot_budget_ms.as_str()),
            ("https://bot.example/ask", "1500")
        );
        assert_eq!(
            (form.reply_type.as_str(), form.title.as_str()),
            ("news", "标题")
        );
    }
}
