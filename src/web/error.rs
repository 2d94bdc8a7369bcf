//! The one error type handlers return: status mapped in one place, internal details logged, never shown.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;
use crate::upstream::ApiError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The caller sent something we cannot accept. `reason` is a short tag for logs and the caller.
    #[error("bad request ({reason}): {detail}")]
    BadRequest {
        reason: &'static str,
        detail: String,
    },
    /// The caller could not prove it is WeChat (signature, stale timestamp, mode).
    #[error("forbidden ({reason}): {detail}")]
    Forbidden {
        reason: &'static str,
        detail: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The session store failed.
    #[error("session error: {0}")]
    Session(#[from] tower_sessions::session::Error),
    /// Writing an export failed.
    #[error("CSV error: {0}")]
    Csv(#[from] csv::Error),
    /// A call to WeChat this request needs failed (or the database behind its credential did).
    #[error("{what}: {source}")]
    Upstream {
        what: &'static str,
        source: ApiError,
    },
    /// A page could not be rendered.
    #[error("template error: {0}")]
    Render(#[from] askama::Error),
    /// A route is wired wrongly (a programming error): logged, answered 500.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// The request body is over the limit of its route.
    #[error("the request body is too large")]
    TooLarge,
    /// The client is over a rate limit: come back after `retry_after` seconds.
    #[error("too many requests: retry after {retry_after} s")]
    TooMany { retry_after: u64 },
    /// A failure a follower must see as a page: rendered by [`crate::web::ui::render_error_pages`].
    #[error("{}: {}", .0.status, .0.en)]
    Page(Box<ErrorPage>),
}

/// What a follower sees when something fails: a sentence in Chinese, English beneath, and a way on.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub status: StatusCode,
    pub title: String,
    pub zh: String,
    pub en: String,
    /// Where the retry button leads (a local path).
    pub retry: Option<String>,
}

impl ErrorPage {
    pub fn new(status: StatusCode, title: &str, zh: &str, en: &str) -> Self {
        Self {
            status,
            title: title.to_owned(),
            zh: zh.to_owned(),
            en: en.to_owned(),
            retry: None,
        }
    }

    pub fn retry(mut self, href: impl Into<String>) -> Self {
        self.retry = Some(href.into());
        self
    }
}

impl From<ErrorPage> for AppError {
    fn from(page: ErrorPage) -> Self {
        Self::Page(Box::new(page))
    }
}

impl AppError {
    pub(crate) fn bad_request(reason: &'static str, detail: impl ToString) -> Self {
        Self::BadRequest {
            reason,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn forbidden(reason: &'static str, detail: impl ToString) -> Self {
        Self::Forbidden {
            reason,
            detail: detail.to_string(),
        }
    }
}

impl AppError {
    /// Logs what the operator needs and returns the status and the words the caller may see.
    fn public(&self) -> (StatusCode, String) {
        match self {
            Self::BadRequest { reason, detail } => {
                tracing::warn!(reason, detail = %detail, "request refused");
                (
                    StatusCode::BAD_REQUEST,
                    format!("bad request: {reason}: {detail}"),
                )
            }
            Self::Forbidden { reason, detail } => {
                tracing::warn!(reason, detail = %detail, "request refused");
                (
                    StatusCode::FORBIDDEN,
                    format!("forbidden: {reason}: {detail}"),
                )
            }
            Self::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily unavailable".into(),
                )
            }
            Self::Session(e) => {
                tracing::error!(error = %e, "session store failure");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily unavailable".into(),
                )
            }
            Self::Upstream { what, source } => {
                tracing::warn!(errcode = source.errcode(), error = %source, "{what}");
                (StatusCode::SERVICE_UNAVAILABLE, (*what).to_owned())
            }
            Self::Render(e) => {
                tracing::error!(error = %e, "page rendering failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
            Self::Internal(what) => {
                tracing::error!(what, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
            Self::Csv(e) => {
                tracing::error!(error = %e, "writing CSV failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
            }
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large".into(),
            ),
            Self::TooMany { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many requests: retry after {retry_after} s"),
            ),
            Self::Page(page) => (page.status, page.en.clone()),
        }
    }

    /// The same failure as JSON (`{"error": "…"}`), for endpoints that scripts call.
    pub fn json(self) -> JsonError {
        JsonError(self)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, text) = self.public();
        let mut response = (status, format!("{text}\n")).into_response();
        match self {
            Self::TooMany { retry_after } => {
                let (zh, en) = if retry_after >= 120 {
                    let minutes = retry_after.div_ceil(60);
                    (format!("{minutes} 分钟"), format!("{minutes} minutes"))
                } else {
                    (
                        format!("{retry_after} 秒"),
                        format!("{retry_after} seconds"),
                    )
                };
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                // Where pages are drawn, the same words as a page; elsewhere the text above.
                response.extensions_mut().insert(ErrorPage::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "操作太频繁",
                    &format!("操作太频繁，请 {zh}后再试。"),
                    &format!("Too many requests: try again in {en}."),
                ));
            }
            Self::Page(page) => {
                // The page is drawn by a layer that knows the layout (the demo banner).
                let mut bare = page.status.into_response();
                bare.extensions_mut().insert(*page);
                return bare;
            }
            _ => {}
        }
        response
    }
}

/// An [`AppError`] answered as JSON, never cached.
#[derive(Debug)]
pub struct JsonError(pub AppError);

impl From<AppError> for JsonError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let (status, error) = self.0.public();
        let mut response = (
            status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(serde_json::json!({ "error": error })),
        )
            .into_response();
        if let AppError::TooMany { retry_after } = self.0 {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

/// Sets `WWW-Authenticate` (RFC 6750 §3, RFC 7617) when there is a challenge to give.
pub(crate) fn set_challenge(response: &mut Response, challenge: Option<String>) {
    if let Some(value) = challenge.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
}
