//! `/admin/templates` and `/admin/campaigns`: the account's template messages (listed from WeChat on
//! demand), a message filled in and previewed as WeChat shows it, sent to one follower or to every
//! follower the list's filters match, and each campaign's progress, paused, resumed or cancelled.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::frame::{Frame, Nav, not_found, see_other};
use super::users::ListParams;
use crate::store::{Audience, Campaign, CampaignState, Progress, Template as Stored};
use crate::templates::{self, FieldValue, Filled, Piece, TemplateError};
use crate::time::beijing_time;
use crate::web::error::{AppError, ErrorPage};
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};

/// Campaigns listed on the templates page.
const RECENT: i64 = 20;
/// A preview counts matching followers up to this many.
const COUNT_CAP: i64 = 1_000_000;

fn wechat_refused(e: &TemplateError, back: &str) -> AppError {
    ErrorPage::new(
        StatusCode::BAD_GATEWAY,
        "微信没有回应 · WeChat refused",
        "微信拒绝了请求。",
        &e.to_string(),
    )
    .retry(back)
    .into()
}

struct CampaignRow {
    campaign: Campaign,
    created: String,
}

impl From<Campaign> for CampaignRow {
    fn from(campaign: Campaign) -> Self {
        Self {
            created: beijing_time(campaign.created_at),
            campaign,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/templates.html")]
struct ListTemplate {
    layout: Layout,
    nav: Nav,
    templates: Vec<Stored>,
    campaigns: Vec<CampaignRow>,
    /// The audience to carry to the compose page (`to=…` or the follower list's filters).
    audience: String,
}

/// The audience part of a query string (`to=…`, or the follower list's filters), carried from page to
/// page.
fn audience_query(params: &HashMap<String, String>) -> String {
    let mut pairs: Vec<_> = params
        .iter()
        .filter(|(k, v)| {
            ["to", "q", "subscribed", "authorized", "tag"].contains(&k.as_str()) && !v.is_empty()
        })
        .collect();
    pairs.sort();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

pub async fn list(
    State(app): State<AppState>,
    frame: Frame,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let audience = audience_query(&params);
    render(&ListTemplate {
        layout: frame.layout,
        nav: frame.nav,
        templates: app.store.templates().await?,
        campaigns: app
            .store
            .campaigns(RECENT)
            .await?
            .into_iter()
            .map(CampaignRow::from)
            .collect(),
        audience,
    })
}

/// `POST /admin/templates/refresh`: lists the account's templates on WeChat again, then back to the
/// list with the same audience.
pub async fn refresh(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    match templates::refresh(&app.store, &app.account).await {
        Ok(_) => Ok(see_other(&format!(
            "/admin/templates?{}",
            audience_query(&params)
        ))),
        Err(TemplateError::Store(e)) => Err(e.into()),
        Err(e) => Err(wechat_refused(&e, "/admin/templates")),
    }
}

/// The compose form, as posted and as shown: every field by its form name.
struct Compose {
    form: HashMap<String, String>,
}

impl Compose {
    fn get(&self, name: &str) -> &str {
        self.form.get(name).map(|v| v.trim()).unwrap_or_default()
    }

    fn filled(&self, template: &Stored) -> Filled {
        Filled {
            template_id: template.template_id.clone(),
            values: templates::fields(&template.content)
                .into_iter()
                .map(|name| {
                    let value = FieldValue {
                        value: self.get(&format!("value.{name}")).to_owned(),
                        color: self.get(&format!("color.{name}")).to_owned(),
                    };
                    (name, value)
                })
                .collect(),
            url: self.get("url").to_owned(),
            miniprogram_appid: self.get("mini_appid").to_owned(),
            miniprogram_page: self.get("mini_page").to_owned(),
        }
    }

    /// Who the message goes to, and the same in words.
    fn audience(&self) -> (Audience, String) {
        if self.get("audience") != "filters" {
            let to = self.get("to").to_owned();
            return (Audience::One(to.clone()), format!("粉丝 · follower {to}"));
        }
        let params = ListParams {
            q: self.get("q").to_owned(),
            subscribed: self.get("subscribed").to_owned(),
            authorized: self.get("authorized").to_owned(),
            tag: self.get("tag").to_owned(),
            ..ListParams::default()
        };
        let words = match params.link(None) {
            filters if filters.is_empty() => "全部粉丝 · every follower".to_owned(),
            filters => format!("筛选的粉丝 · followers matching {filters}"),
        };
        (Audience::Matching(params.query(0)), words)
    }
}

#[derive(Template)]
#[template(path = "admin/template_send.html")]
struct ComposeTemplate {
    layout: Layout,
    nav: Nav,
    template: Stored,
    /// (field name, value, colour).
    fields: Vec<(String, String, String)>,
    compose: Compose,
    /// Lines of (text, is a value, colour).
    preview: Option<Vec<Vec<(String, bool, String)>>>,
    /// How many followers the audience reaches (for a preview to many).
    reach: Option<String>,
    problems: Vec<String>,
    /// The account's follower tags, an audience filter.
    tags: Vec<crate::store::FollowerTag>,
}

async fn compose_page(
    app: &AppState,
    frame: Frame,
    template: Stored,
    compose: Compose,
    preview: bool,
    problems: Vec<String>,
) -> Result<Response, AppError> {
    let filled = compose.filled(&template);
    let reach = match compose.audience() {
        (Audience::Matching(q), words) if preview => {
            let n = app.store.count_matching_users(&q, COUNT_CAP).await?;
            let n = if n > COUNT_CAP {
                format!("{COUNT_CAP}+")
            } else {
                n.to_string()
            };
            Some(format!("{words}: {n}"))
        }
        (Audience::One(_), words) if preview => Some(words),
        _ => None,
    };
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = render(&ComposeTemplate {
        tags: app.store.follower_tags().await?,
        layout: frame.layout,
        nav: frame.nav,
        fields: filled
            .values
            .iter()
            .map(|(n, v)| (n.clone(), v.value.clone(), v.color.clone()))
            .collect(),
        preview: preview.then(|| {
            templates::preview(&template, &filled.values)
                .into_iter()
                .map(|line| {
                    line.into_iter()
                        .map(|piece| match piece {
                            Piece::Text(text) => (text, false, String::new()),
                            Piece::Value { text, color } => (text, true, color),
                        })
                        .collect()
                })
                .collect()
        }),
        template,
        compose,
        reach,
        problems,
    })?;
    Ok((status, page).into_response())
}

async fn stored(app: &AppState, id: &str) -> Result<Stored, AppError> {
    app.store
        .template(id)
        .await?
        .ok_or_else(|| not_found("模板"))
}

/// `GET /admin/templates/{id}`: the compose form, its audience from the query (`to=` or filters).
pub async fn compose(
    State(app): State<AppState>,
    frame: Frame,
    Path(id): Path<String>,
    Query(mut form): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let template = stored(&app, &id).await?;
    if !form.contains_key("to") {
        form.insert("audience".into(), "filters".into());
    }
    compose_page(&app, frame, template, Compose { form }, false, Vec::new()).await
}

/// `POST /admin/templates/{id}`: `action=preview` shows the message as WeChat would; `action=send`
/// queues it as a campaign.
pub async fn submit(
    State(app): State<AppState>,
    frame: Frame,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let template = stored(&app, &id).await?;
    let compose = Compose { form };
    let mut problems = match compose.filled(&template).body(&template) {
        Err(TemplateError::Invalid(problems)) => problems,
        _ => Vec::new(),
    };
    let (audience, words) = compose.audience();
    if matches!(&audience, Audience::One(to) if to.is_empty() || to.len() > 64) {
        problems.push("give the follower's OpenID, or choose the follower list's filters".into());
    }
    if compose.get("action") != "send" || !problems.is_empty() {
        return compose_page(&app, frame, template, compose, true, problems).await;
    }
    let body = compose
        .filled(&template)
        .body(&template)
        .map_err(|e| AppError::bad_request("template", e))?;
    let (campaign, _) = templates::send(
        &app.store,
        app.config.template_rate,
        &body,
        &audience,
        &words,
        &frame.nav.admin,
        None,
    )
    .await
    .map_err(|e| match e {
        TemplateError::Store(e) => AppError::from(e),
        other => AppError::bad_request("template", other),
    })?;
    app.outbox.wake();
    Ok(see_other(&format!("/admin/campaigns/{campaign}")))
}

struct JobRow {
    openid: String,
    state: &'static str,
    reason: String,
    msgid: String,
    delivery: String,
}

#[derive(Template)]
#[template(path = "admin/campaign.html")]
struct CampaignTemplate {
    layout: Layout,
    nav: Nav,
    campaign: CampaignRow,
    progress: Progress,
    finished: String,
    /// The first few sends, with WeChat's answers.
    jobs: Vec<JobRow>,
}

pub async fn campaign(
    State(app): State<AppState>,
    frame: Frame,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    app.store.finish_campaigns().await?;
    let campaign = app
        .store
        .campaign(id)
        .await?
        .ok_or_else(|| not_found("群发"))?;
    let progress = app.store.campaign_progress(id).await?;
    let jobs = app
        .store
        .campaign_jobs(id, 20)
        .await?
        .into_iter()
        .map(|j| JobRow {
            openid: j.openid,
            state: j.state.as_str(),
            reason: j.last_error.unwrap_or_default(),
            msgid: j.msgid.unwrap_or_default(),
            delivery: j.delivery.unwrap_or_default(),
        })
        .collect();
    render(&CampaignTemplate {
        layout: frame.layout,
        nav: frame.nav,
        finished: campaign.finished_at.map(beijing_time).unwrap_or_default(),
        campaign: CampaignRow::from(campaign),
        progress,
        jobs,
    })
}

/// `POST /admin/campaigns/{id}/{pause|resume|cancel}`.
pub async fn change(
    State(app): State<AppState>,
    frame: Frame,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Response, AppError> {
    let to = match action.as_str() {
        "pause" => CampaignState::Paused,
        "resume" => CampaignState::Running,
        "cancel" => CampaignState::Cancelled,
        _ => return Err(AppError::bad_request("action", "pause, resume or cancel")),
    };
    if app.store.campaign(id).await?.is_none() {
        return Err(not_found("群发"));
    }
    if !app.store.change_campaign(id, to).await? {
        return Err(ErrorPage::new(
            StatusCode::CONFLICT,
            "没有改变 · Unchanged",
            "群发当前的状态不能这样改变。",
            &format!("The campaign cannot {action} from where it is."),
        )
        .retry(format!("/admin/campaigns/{id}"))
        .into());
    }
    tracing::info!(campaign = id, admin = %frame.nav.admin, action, "campaign changed");
    app.outbox.wake();
    Ok(see_other(&format!("/admin/campaigns/{id}")))
}
