//! `/admin/clients`: the apps that sign followers in with WeChat through wxportal (OpenID Connect
//! clients): register one, see its settings, give it a new secret, delete it. A secret is shown once,
//! on the page that follows its creation or rotation, and stored hashed.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::frame::{Frame, Nav, not_found, see_other};
use crate::oidc::clients::{self, ClientError, MAX_NAME_CHARS, NewClient, Registered};
use crate::time::beijing_time;
use crate::web::error::{AppError, ErrorPage};
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};

struct ClientRow {
    client: Registered,
    created: String,
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
struct ListTemplate {
    layout: Layout,
    nav: Nav,
    clients: Vec<ClientRow>,
    issuer: String,
    max_name: usize,
    /// The app just registered or given a new secret, with the secret to copy now.
    shown: Option<Registered>,
}

async fn page(
    app: &AppState,
    frame: Frame,
    shown: Option<Registered>,
) -> Result<Response, AppError> {
    let clients = app
        .store
        .clients()
        .await?
        .into_iter()
        .map(|client| ClientRow {
            created: beijing_time(client.created_at),
            client: clients::describe(client),
        })
        .collect();
    render(&ListTemplate {
        layout: frame.layout,
        nav: frame.nav,
        clients,
        issuer: app.oidc.issuer.clone(),
        max_name: MAX_NAME_CHARS,
        shown,
    })
}

pub async fn list(State(app): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    page(&app, frame, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    name: String,
    /// One URI per line.
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    logout_uris: String,
    #[serde(default)]
    public: Option<String>,
    #[serde(default)]
    consent: Option<String>,
    #[serde(default)]
    openid_subject: Option<String>,
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn refused(e: ClientError) -> AppError {
    match e {
        ClientError::Store(e) => e.into(),
        ClientError::NotFound(_) => not_found("应用"),
        other => ErrorPage::new(
            StatusCode::BAD_REQUEST,
            "未保存 · Not saved",
            "应用的设置不对。",
            &other.to_string(),
        )
        .retry("/admin/clients")
        .into(),
    }
}

pub async fn create(
    State(app): State<AppState>,
    frame: Frame,
    Form(form): Form<CreateForm>,
) -> Result<Response, AppError> {
    let registered = clients::create(
        &app.store,
        NewClient {
            name: form.name,
            redirect_uris: lines(&form.redirect_uris),
            post_logout_redirect_uris: lines(&form.logout_uris),
            public: form.public.is_some(),
            consent: form.consent.is_some(),
            subject_openid: form.openid_subject.is_some(),
        },
    )
    .await
    .map_err(refused)?;
    tracing::info!(admin = %frame.nav.admin, client = %registered.client_id, "app registered");
    page(&app, frame, Some(registered)).await
}

pub async fn rotate(
    State(app): State<AppState>,
    frame: Frame,
    Path(client_id): Path<String>,
) -> Result<Response, AppError> {
    let registered = clients::rotate_secret(&app.store, &client_id)
        .await
        .map_err(refused)?;
    tracing::info!(admin = %frame.nav.admin, client = %client_id, "app secret rotated");
    page(&app, frame, Some(registered)).await
}

pub async fn delete(
    State(app): State<AppState>,
    frame: Frame,
    Path(client_id): Path<String>,
) -> Result<Response, AppError> {
    if !app.store.delete_client(&client_id).await? {
        return Err(not_found("应用"));
    }
    tracing::info!(admin = %frame.nav.admin, client = %client_id, "app deleted");
    Ok(see_other("/admin/clients"))
}
