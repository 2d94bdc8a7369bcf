//! `/admin/tokens`: the HTTP API's tokens (docs/api.md): make one with its scopes (shown once, on the
//! page that follows), see when each was last used, revoke one. The command line does the same
//! (`wxportal token`) through the same code.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::frame::{Frame, Nav, not_found, see_other};
use crate::store::ApiToken;
use crate::time::beijing_time;
use crate::web::api::SCOPES;
use crate::web::api::tokens::{self, Issued, MAX_NAME_CHARS, TokenError};
use crate::web::error::{AppError, ErrorPage};
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};

struct TokenRow {
    token: ApiToken,
    created: String,
    last_used: String,
    revoked: String,
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct ListTemplate {
    layout: Layout,
    nav: Nav,
    tokens: Vec<TokenRow>,
    scopes: &'static [(&'static str, &'static str)],
    max_name: usize,
    /// The token just made, to copy now.
    shown: Option<Issued>,
}

async fn page(app: &AppState, frame: Frame, shown: Option<Issued>) -> Result<Response, AppError> {
    let when = |t: Option<i64>| t.map(beijing_time).unwrap_or_default();
    let tokens = app
        .store
        .api_tokens()
        .await?
        .into_iter()
        .map(|token| TokenRow {
            created: beijing_time(token.created_at),
            last_used: when(token.last_used_at),
            revoked: when(token.revoked_at),
            token,
        })
        .collect();
    render(&ListTemplate {
        layout: frame.layout,
        nav: frame.nav,
        tokens,
        scopes: SCOPES,
        max_name: MAX_NAME_CHARS,
        shown,
    })
}

pub async fn list(State(app): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    page(&app, frame, None).await
}

pub async fn create(
    State(app): State<AppState>,
    frame: Frame,
    // The fields in order: a `name`, and a `scope` for each box ticked.
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let name = fields
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let scopes: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let issued = tokens::issue(&app.store, &name, &scopes)
        .await
        .map_err(|e| match e {
            TokenError::Store(e) => AppError::from(e),
            TokenError::Invalid(why) => ErrorPage::new(
                StatusCode::BAD_REQUEST,
                "未创建 · Not created",
                "令牌的名称或权限不对。",
                &why,
            )
            .retry("/admin/tokens")
            .into(),
        })?;
    tracing::info!(admin = %frame.nav.admin, token = %issued.id, "API token created");
    page(&app, frame, Some(issued)).await
}

pub async fn revoke(
    State(app): State<AppState>,
    frame: Frame,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    if !app.store.revoke_api_token(&id).await? {
        return Err(not_found("令牌"));
    }
    tracing::info!(admin = %frame.nav.admin, token = %id, "API token revoked");
    Ok(see_other("/admin/tokens"))
}
