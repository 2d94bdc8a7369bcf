//! What every admin page shares: the frame (layout and navigation) and the common answers.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

use crate::web::error::{AppError, ErrorPage};
use crate::web::sessions::Csrf;
use crate::web::state::AppState;
use crate::web::ui::Layout;

/// The admin a request is signed in as, put in the request by the guard.
#[derive(Debug, Clone)]
pub struct CurrentAdmin {
    pub name: String,
}

/// The admin navigation: who is signed in and the CSRF token for the page's forms.
pub(crate) struct Nav {
    pub admin: String,
    pub csrf: String,
}

/// What every admin page needs: the layout and the navigation.
pub(crate) struct Frame {
    pub layout: Layout,
    pub nav: Nav,
}

impl FromRequestParts<AppState> for Frame {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let admin = parts
            .extensions
            .get::<CurrentAdmin>()
            .cloned()
            .ok_or_else(|| AppError::forbidden("admin", "not signed in"))?;
        let csrf = Csrf::from_request_parts(parts, app).await?;
        Ok(Self {
            layout: Layout::new(app, false),
            nav: Nav {
                admin: admin.name,
                csrf: csrf.token(),
            },
        })
    }
}

/// A 303 back to a page after a form: the browser then GETs it.
pub(super) fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

/// JSON indented for reading; as stored if it does not parse.
pub(super) fn pretty_json(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| raw.to_owned())
}

/// 404 as an admin page.
pub(super) fn not_found(what: &str) -> AppError {
    ErrorPage::new(
        StatusCode::NOT_FOUND,
        "找不到",
        &format!("没有这个{what}。"),
        "Not found.",
    )
    .retry("/admin")
    .into()
}
