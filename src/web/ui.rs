//! What every page shares: the layout, rendering, the drawn error pages and a one-message notice page.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use super::error::{AppError, ErrorPage};

/// What the base layout needs on every page.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub demo: bool,
    pub account_name: String,
    pub signed_in: bool,
}

impl Layout {
    pub fn new(app: &AppState, signed_in: bool) -> Self {
        Self {
            demo: app.demo,
            account_name: app.config.account_name.clone(),
            signed_in,
        }
    }
}

/// Renders a page template.
pub(crate) fn render(template: &impl Template) -> Result<Response, AppError> {
    Ok(Html(template.render()?).into_response())
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    layout: Layout,
    page: &'a ErrorPage,
}

/// Draws the [`ErrorPage`] a handler failed with, inside the layout (so the demo banner shows too).
pub(crate) async fn render_error_pages(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let Some(page) = response.extensions_mut().remove::<ErrorPage>() else {
        return response;
    };
    let template = ErrorTemplate {
        layout: Layout::new(&app, false),
        page: &page,
    };
    // Headers a refusal set (Retry-After) stay with the drawn page.
    let retry_after = response.headers_mut().remove(header::RETRY_AFTER);
    match template.render() {
        Ok(html) => {
            let mut drawn = (page.status, Html(html)).into_response();
            if let Some(value) = retry_after {
                drawn.headers_mut().insert(header::RETRY_AFTER, value);
            }
            drawn
        }
        Err(e) => AppError::Render(e).into_response(),
    }
}

/// Whether the request comes from WeChat's built-in browser (§8).
pub fn in_wechat(headers: &HeaderMap) -> bool {
    headers
        .get(header::USER_AGENT)
        .and_then(|ua| ua.to_str().ok())
        .is_some_and(|ua| ua.contains("MicroMessenger"))
}

/// Only web images or our own: never `javascript:` or `data:` from a profile.
pub(crate) fn is_image_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://") || url.starts_with("/static/")
}

/// A page with one message: an icon, a title and a sentence in Chinese and English.
#[derive(Template)]
#[template(path = "pages/notice.html")]
pub(crate) struct Notice<'a> {
    pub layout: Layout,
    pub icon: &'a str,
    pub title: &'a str,
    pub zh: &'a str,
    pub en: &'a str,
}
