//! The routes that act: answer a follower, send a template message, create a QR code, and read back
//! what they made. Every POST takes an `Idempotency-Key` ([`Idempotency`]); what it makes goes
//! through the same paths as the admin area's (the outbox, campaigns, `qrcode/create`).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Caller, ErrorCode, Idempotency, body, created};
use crate::qr::QrError;
use crate::store::{Audience, Campaign, Job, JobKind, StoreError, UserQuery};
use crate::templates::{FieldValue, Filled, TemplateError};
use crate::time::unix_now;
use crate::web::admin::conversation::{message_of, window};
use crate::web::state::AppState;

/// Who made something through the API, as the admin area shows it.
fn author(caller: &Caller) -> String {
    format!("api:{}", caller.0.name)
}

/// A path's numeric id; anything else names nothing.
fn id(text: &str, what: &str) -> Result<i64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::new(ErrorCode::NotFound, format!("no such {what}")))
}

/// What a POST made (and whether another request with its key made it first), or why it failed.
async fn made<E: Into<ApiError>>(
    app: &AppState,
    once: Option<&crate::store::Once>,
    result: Result<i64, E>,
    taken: impl Fn(&E) -> bool,
) -> Result<(i64, bool), ApiError> {
    match (result, once) {
        (Ok(id), _) => Ok((id, false)),
        (Err(e), Some(once)) if taken(&e) => Ok((Idempotency::after_race(app, once).await?, true)),
        (Err(e), _) => Err(e.into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AnswerBody {
    #[serde(default)]
    text: String,
    #[serde(default)]
    media_id: String,
}

fn answer_json(job: &Job) -> Value {
    json!({
        "id": job.id,
        "openid": job.openid,
        "state": job.state.as_str(),
        "message": job.payload.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()),
        "attempts": job.attempts,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "error": job.last_error,
    })
}

async fn answer_response(
    app: &AppState,
    id: i64,
    status: StatusCode,
    replayed: bool,
) -> Result<Response, ApiError> {
    match app.store.job(id).await? {
        Some(job) if job.kind == JobKind::Custom => {
            Ok(created(status, replayed, answer_json(&job)))
        }
        _ => Err(ApiError::new(ErrorCode::NotFound, "no such answer")),
    }
}

/// `POST /api/v1/followers/{openid}/answers`: a customer-service message, queued in the outbox while
/// the follower's 48-hour window is open.
pub(super) async fn answer(
    State(app): State<AppState>,
    caller: Caller,
    Path(openid): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    caller.require("messages:send")?;
    let route = format!("POST /api/v1/followers/{openid}/answers");
    let once = match Idempotency::of(&app, &caller, &headers, &route, &bytes).await? {
        Idempotency::Made(id) => {
            return answer_response(&app, id, StatusCode::ACCEPTED, true).await;
        }
        Idempotency::Fresh(once) => once,
    };
    let asked: AnswerBody = body(&bytes)?;
    let message = message_of(&openid, &asked.text, &asked.media_id)
        .map_err(|(_, en)| ApiError::invalid(en))?;
    if app.store.user(&openid).await?.is_none() {
        return Err(ApiError::new(ErrorCode::NotFound, "no such follower"));
    }
    let (open, why) = window(app.store.last_interaction(&openid).await?, unix_now());
    if !open {
        return Err(ApiError::new(ErrorCode::WindowClosed, why));
    }
    let queued = app
        .store
        .queue_custom(
            &openid,
            &message.to_string(),
            &author(&caller),
            once.as_ref(),
        )
        .await;
    let (job, replayed) = made(&app, once.as_ref(), queued, |e| {
        matches!(e, StoreError::KeyTaken)
    })
    .await?;
    // Read back before the outbox is woken: the answer describes the job as it was queued, not as
    // the worker may already have taken it.
    let response = answer_response(&app, job, StatusCode::ACCEPTED, replayed).await;
    if !replayed {
        app.outbox.wake();
        tracing::info!(job, token = caller.0.id, "API answer queued");
    }
    response
}

/// `GET /api/v1/answers/{id}`: where an answer is (queued, sending, done, failed).
pub(super) async fn answer_status(
    State(app): State<AppState>,
    caller: Caller,
    Path(job): Path<String>,
) -> Result<Response, ApiError> {
    caller.require("messages:send")?;
    answer_response(&app, id(&job, "answer")?, StatusCode::OK, false).await
}

/// A field's value: `"text"`, or `{"value": "text", "color": "#RRGGBB"}`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum FieldBody {
    Text(String),
    Full {
        value: String,
        #[serde(default)]
        color: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MiniProgram {
    appid: String,
    pagepath: String,
}

/// Followers a campaign goes to, as the follower list filters them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AudienceBody {
    subscribed: Option<bool>,
    search: Option<String>,
    /// A follower tag's id.
    tag: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TemplateBody {
    template_id: String,
    /// One follower's OpenID…
    to: Option<String>,
    /// …or every follower these filters match.
    audience: Option<AudienceBody>,
    data: BTreeMap<String, FieldBody>,
    #[serde(default)]
    url: String,
    miniprogram: Option<MiniProgram>,
}

fn campaign_json(campaign: &Campaign, progress: &crate::store::Progress) -> Value {
    json!({
        "id": campaign.id,
        "template_id": campaign.template_id,
        "state": campaign.state.as_str(),
        "audience": campaign.audience,
        "total": campaign.total,
        "rate": campaign.rate,
        "created_by": campaign.created_by,
        "created_at": campaign.created_at,
        "finished_at": campaign.finished_at,
        "progress": {
            "remaining": progress.remaining,
            "sent": progress.sent,
            "failed": progress.failed,
            "cancelled": progress.cancelled,
            "deliveries": progress.deliveries.iter().cloned().collect::<BTreeMap<_, _>>(),
            "failures": progress.reasons.iter()
                .map(|(reason, count)| json!({"reason": reason, "count": count}))
                .collect::<Vec<_>>(),
        },
    })
}

async fn campaign_response(
    app: &AppState,
    id: i64,
    status: StatusCode,
    replayed: bool,
) -> Result<Response, ApiError> {
    let Some(campaign) = app.store.campaign(id).await? else {
        return Err(ApiError::new(ErrorCode::NotFound, "no such campaign"));
    };
    let progress = app.store.campaign_progress(id).await?;
    Ok(created(
        status,
        replayed,
        campaign_json(&campaign, &progress),
    ))
}

impl From<TemplateError> for ApiError {
    fn from(e: TemplateError) -> Self {
        match e {
            TemplateError::Invalid(reasons) => ApiError::invalid(reasons.join("; ")),
            TemplateError::WeChat(e) => ApiError::new(ErrorCode::Upstream, e.to_string()),
            TemplateError::Store(e) => e.into(),
        }
    }
}

/// `POST /api/v1/templates/send`: a template message to one follower or to every follower a filter
/// matches, as a campaign sent through the outbox at the account's rate.
pub(super) async fn send_template(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    caller.require("templates:send")?;
    let once = match Idempotency::of(
        &app,
        &caller,
        &headers,
        "POST /api/v1/templates/send",
        &bytes,
    )
    .await?
    {
        Idempotency::Made(id) => {
            return campaign_response(&app, id, StatusCode::ACCEPTED, true).await;
        }
        Idempotency::Fresh(once) => once,
    };
    let asked: TemplateBody = body(&bytes)?;
    let (audience, words) = match (asked.to, asked.audience) {
        (Some(to), None) if !to.trim().is_empty() && to.len() <= 64 => {
            let to = to.trim().to_owned();
            let words = format!("粉丝 · follower {to}");
            (Audience::One(to), words)
        }
        (None, Some(a)) => {
            let search = a.search.filter(|s| !s.trim().is_empty());
            if search.as_ref().is_some_and(|s| s.chars().count() > 64) {
                return Err(ApiError::invalid("search is at most 64 characters"));
            }
            let words = format!(
                "API · search {:?}, subscribed {:?}, tag {:?}",
                search.as_deref().unwrap_or(""),
                a.subscribed,
                a.tag
            );
            let query = UserQuery {
                search,
                subscribed: a.subscribed,
                tag: a.tag,
                ..UserQuery::default()
            };
            (Audience::Matching(query), words)
        }
        _ => {
            return Err(ApiError::invalid(
                "give either `to` (one OpenID of at most 64 characters) or `audience`",
            ));
        }
    };
    let Some(template) =
        crate::templates::find(&app.store, &app.account, &asked.template_id).await?
    else {
        return Err(ApiError::invalid(format!(
            "the account has no template {:?}",
            asked.template_id
        )));
    };
    let (miniprogram_appid, miniprogram_page) = asked
        .miniprogram
        .map(|m| (m.appid, m.pagepath))
        .unwrap_or_default();
    let filled = Filled {
        template_id: template.template_id.clone(),
        values: asked
            .data
            .into_iter()
            .map(|(name, v)| {
                let (value, color) = match v {
                    FieldBody::Text(value) => (value, String::new()),
                    FieldBody::Full { value, color } => (value, color),
                };
                (name, FieldValue { value, color })
            })
            .collect(),
        url: asked.url,
        miniprogram_appid,
        miniprogram_page,
    };
    let message = filled.body(&template)?;
    let sent = crate::templates::send(
        &app.store,
        app.config.template_rate,
        &message,
        &audience,
        &words,
        &author(&caller),
        once.as_ref(),
    )
    .await
    .map(|(id, _)| id);
    let (campaign, replayed) = made(&app, once.as_ref(), sent, |e| {
        matches!(e, TemplateError::Store(StoreError::KeyTaken))
    })
    .await?;
    // As for an answer: read back before the outbox is woken.
    let response = campaign_response(&app, campaign, StatusCode::ACCEPTED, replayed).await;
    if !replayed {
        app.outbox.wake();
    }
    response
}

/// `GET /api/v1/campaigns/{id}`: how far a campaign got.
pub(super) async fn campaign(
    State(app): State<AppState>,
    caller: Caller,
    Path(campaign): Path<String>,
) -> Result<Response, ApiError> {
    caller.require("templates:send")?;
    campaign_response(&app, id(&campaign, "campaign")?, StatusCode::OK, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QrBody {
    name: String,
    /// Seconds a temporary code lives; absent or null for a permanent one.
    expires_in: Option<i64>,
}

async fn qr_response(
    app: &AppState,
    id: i64,
    status: StatusCode,
    replayed: bool,
) -> Result<Response, ApiError> {
    match app.store.qr_code(id).await? {
        Some(code) => Ok(created(status, replayed, crate::qr::to_json(&code))),
        None => Err(ApiError::new(ErrorCode::NotFound, "no such QR code")),
    }
}

impl From<QrError> for ApiError {
    fn from(e: QrError) -> Self {
        match e {
            QrError::Invalid(why) => ApiError::invalid(why),
            QrError::WeChat(e) => ApiError::new(ErrorCode::Upstream, e.to_string()),
            QrError::Store(e) => e.into(),
        }
    }
}

/// `POST /api/v1/qr-codes`: a code with a new scene, created on WeChat. With an `Idempotency-Key`, a
/// retry after the first succeeded calls WeChat no more; two racing requests may each call it, and
/// only one code is kept.
pub(super) async fn create_qr(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    caller.require("qr:write")?;
    let once =
        match Idempotency::of(&app, &caller, &headers, "POST /api/v1/qr-codes", &bytes).await? {
            Idempotency::Made(id) => return qr_response(&app, id, StatusCode::CREATED, true).await,
            Idempotency::Fresh(once) => once,
        };
    let asked: QrBody = body(&bytes)?;
    let made_code = crate::qr::create(
        &app.store,
        &app.account,
        &asked.name,
        asked.expires_in,
        &author(&caller),
        once.as_ref(),
    )
    .await
    .map(|code| code.id);
    let (code, replayed) = made(&app, once.as_ref(), made_code, |e| {
        matches!(e, QrError::Store(StoreError::KeyTaken))
    })
    .await?;
    qr_response(&app, code, StatusCode::CREATED, replayed).await
}

/// `GET /api/v1/qr-codes/{id}`: a code and its scans.
pub(super) async fn qr_code(
    State(app): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    caller.require("qr:write")?;
    qr_response(&app, id(&code, "QR code")?, StatusCode::OK, false).await
}
