//! `/admin/endpoints`: where events go (docs/events.md). Register an endpoint (its secret shown once,
//! on the page that follows), see each one's deliveries and failures, send a delivery again, switch an
//! endpoint on or off, rotate its secret with an overlap. The command line does the same
//! (`wxportal endpoint`) through the same code.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::frame::{Frame, Nav, not_found, pretty_json, see_other};
use crate::events::EventType;
use crate::events::endpoints::{self, DEFAULT_OVERLAP_HOURS, EndpointError, MAX_URL};
use crate::store::{Delivery, DeliveryState, Endpoint, EndpointSummary};
use crate::time::beijing_time;
use crate::web::error::{AppError, ErrorPage};
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};

/// Deliveries shown per page.
const PAGE: i64 = 50;

/// A secret just made, to copy now.
struct Shown {
    endpoint_id: i64,
    secret: String,
}

#[derive(Template)]
#[template(path = "admin/endpoints.html")]
struct ListTemplate {
    layout: Layout,
    nav: Nav,
    endpoints: Vec<EndpointSummary>,
    types: [EventType; 7],
    max_url: usize,
    shown: Option<Shown>,
}

async fn list_page(
    app: &AppState,
    frame: Frame,
    shown: Option<Shown>,
) -> Result<Response, AppError> {
    render(&ListTemplate {
        layout: frame.layout,
        nav: frame.nav,
        endpoints: app.store.endpoints().await?,
        types: EventType::ALL,
        max_url: MAX_URL,
        shown,
    })
}

pub async fn list(State(app): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    list_page(&app, frame, None).await
}

/// The fields in order: `url`, `description`, and an `event` for each box ticked.
pub async fn create(
    State(app): State<AppState>,
    frame: Frame,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let events: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "event")
        .map(|(_, v)| v.clone())
        .collect();
    let url = field("url");
    let registered = endpoints::register(&app.store, &url, &field("description"), &events)
        .await
        .map_err(|e| match e {
            EndpointError::Store(e) => AppError::from(e),
            EndpointError::Invalid(why) => ErrorPage::new(
                StatusCode::BAD_REQUEST,
                "未添加 · Not added",
                "地址或事件类型不对。",
                &why,
            )
            .retry("/admin/endpoints")
            .into(),
        })?;
    app.subscriptions.reload().await?;
    tracing::info!(admin = %frame.nav.admin, endpoint = registered.id, "event endpoint added");
    list_page(
        &app,
        frame,
        Some(Shown {
            endpoint_id: registered.id,
            secret: registered.secret,
        }),
    )
    .await
}

struct DeliveryRow {
    delivery: Delivery,
    created: String,
    finished: String,
    due: String,
    payload: String,
}

#[derive(Template)]
#[template(path = "admin/endpoint.html")]
struct DetailTemplate {
    layout: Layout,
    nav: Nav,
    endpoint: Endpoint,
    events: String,
    failing_since: String,
    rotating_until: String,
    deliveries: Vec<DeliveryRow>,
    state: String,
    /// The id to page on from, when there are more.
    next: Option<i64>,
    overlap_hours: i64,
    shown: Option<Shown>,
}

#[derive(Debug, Deserialize)]
pub struct DetailQuery {
    state: Option<String>,
    before: Option<i64>,
}

async fn detail_page(
    app: &AppState,
    frame: Frame,
    id: i64,
    q: DetailQuery,
    shown: Option<Shown>,
) -> Result<Response, AppError> {
    let Some(endpoint) = app.store.endpoint(id).await? else {
        return Err(not_found("地址"));
    };
    let state = q.state.as_deref().and_then(DeliveryState::from_text);
    let mut deliveries = app.store.deliveries(id, state, q.before, PAGE + 1).await?;
    let next = (deliveries.len() as i64 > PAGE).then(|| {
        deliveries.truncate(PAGE as usize);
        deliveries.last().map_or(0, |d| d.id)
    });
    let when = |t: Option<i64>| t.map(beijing_time).unwrap_or_default();
    let now = crate::time::unix_now();
    render(&DetailTemplate {
        layout: frame.layout,
        nav: frame.nav,
        events: endpoint
            .events()
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        failing_since: when(endpoint.failing_since),
        rotating_until: when(endpoint.previous_until.filter(|until| *until > now)),
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliveryRow {
                created: beijing_time(d.created_at),
                finished: when(d.finished_at),
                due: beijing_time(d.due_at),
                payload: pretty_json(&d.payload),
                delivery: d,
            })
            .collect(),
        state: state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        next,
        overlap_hours: DEFAULT_OVERLAP_HOURS,
        endpoint,
        shown,
    })
}

pub async fn detail(
    State(app): State<AppState>,
    frame: Frame,
    Path(id): Path<i64>,
    Query(q): Query<DetailQuery>,
) -> Result<Response, AppError> {
    detail_page(&app, frame, id, q, None).await
}

/// Send again: a delivery that was done or given up is queued now, with a day of attempts ahead.
pub async fn resend(
    State(app): State<AppState>,
    frame: Frame,
    Path((id, delivery)): Path<(i64, i64)>,
) -> Result<Response, AppError> {
    if !app.store.resend_delivery(id, delivery).await? {
        return Err(not_found("投递"));
    }
    app.deliverer.wake();
    tracing::info!(admin = %frame.nav.admin, endpoint = id, delivery, "delivery sent again");
    Ok(see_other(&format!("/admin/endpoints/{id}")))
}

/// `enable`, `disable`, `delete`.
pub async fn change(
    State(app): State<AppState>,
    frame: Frame,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Response, AppError> {
    let done = match action.as_str() {
        "enable" => app.store.set_endpoint_enabled(id, true, None).await?,
        "disable" => {
            let reason = format!("switched off by {}", frame.nav.admin);
            app.store
                .set_endpoint_enabled(id, false, Some(&reason))
                .await?
        }
        "delete" => app.store.delete_endpoint(id).await?,
        _ => return Err(not_found("操作")),
    };
    if !done {
        return Err(not_found("地址"));
    }
    app.subscriptions.reload().await?;
    app.deliverer.wake();
    tracing::info!(admin = %frame.nav.admin, endpoint = id, action, "event endpoint changed");
    Ok(see_other(
        if action == "delete" {
            "/admin/endpoints".to_owned()
        } else {
            format!("/admin/endpoints/{id}")
        }
        .as_str(),
    ))
}

#[derive(Debug, Deserialize)]
pub struct RotateForm {
    overlap_hours: Option<i64>,
}

/// A new secret, shown once; the old one keeps signing for the overlap.
pub async fn rotate(
    State(app): State<AppState>,
    frame: Frame,
    Path(id): Path<i64>,
    Form(form): Form<RotateForm>,
) -> Result<Response, AppError> {
    let overlap = form.overlap_hours.unwrap_or(DEFAULT_OVERLAP_HOURS);
    let Some(secret) = endpoints::rotate_secret(&app.store, id, overlap).await? else {
        return Err(not_found("地址"));
    };
    tracing::info!(admin = %frame.nav.admin, endpoint = id, overlap_hours = overlap, "endpoint secret rotated");
    let q = DetailQuery {
        state: None,
        before: None,
    };
    detail_page(
        &app,
        frame,
        id,
        q,
        Some(Shown {
            endpoint_id: id,
            secret,
        }),
    )
    .await
}
