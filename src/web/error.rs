//! The one error type handlers return: status mapped in one place, internal details logged, never shown.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

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
    Session(String),
    /// A page could not be rendered.
    #[error("template error: {0}")]
    Render(#[from] askama::Error),
    /// The request body is over the limit of its route.
    #[error("the request body is too large")]
    TooLarge,
    /// The client is over a rate limit: come back after `retry_after` seconds.
    #[error("too many requests: retry after {retry_after} s")]
    TooMany { retry_after: u64 },
    /// A failure a follower must see as a page: rendered by [`crate::web::portal::render_error_pages`].
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
    pub fn bad_request(reason: &'static str, detail: impl ToString) -> Self {
        Self::BadRequest {
            reason,
            detail: detail.to_string(),
        }
    }

    pub fn session(e: tower_sessions::session::Error) -> Self {
        Self::Session(e.to_string())
    }

    pub fn forbidden(reason: &'static str, detail: impl ToString) -> Self {
        Self::Forbidden {
            reason,
            detail: detail.to_string(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match &self {
            Self::BadRequest { reason, detail } => {
                tracing::warn!(reason, detail = %detail, "request refused");
                (
                    StatusCode::BAD_REQUEST,
                    format!("bad request: {reason}: {detail}\n"),
                )
                    .into_response()
            }
            Self::Forbidden { reason, detail } => {
                tracing::warn!(reason, detail = %detail, "request refused");
                (
                    StatusCode::FORBIDDEN,
                    format!("forbidden: {reason}: {detail}\n"),
                )
                    .into_response()
            }
            Self::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable\n").into_response()
            }
            Self::Session(e) => {
                tracing::error!(error = %e, "session store failure");
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable\n").into_response()
            }
            Self::Render(e) => {
                tracing::error!(error = %e, "page rendering failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
            }
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large\n",
            )
                .into_response(),
            Self::TooMany { retry_after } => {
                let (zh, en) = if *retry_after >= 120 {
                    let minutes = retry_after.div_ceil(60);
                    (format!("{minutes} 分钟"), format!("{minutes} minutes"))
                } else {
                    (
                        format!("{retry_after} 秒"),
                        format!("{retry_after} seconds"),
                    )
                };
                let page = ErrorPage::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "操作太频繁",
                    &format!("操作太频繁，请 {zh}后再试。"),
                    &format!("Too many requests: try again in {en}."),
                );
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, retry_after.to_string())],
                    format!("too many requests: retry after {retry_after} s\n"),
                )
                    .into_response();
                // Where pages are drawn, the same words as a page; elsewhere the text above.
                response.extensions_mut().insert(page);
                response
            }
            Self::Page(page) => {
                // The page is drawn by a layer that knows the layout (the demo banner).
                let mut response = page.status.into_response();
                response.extensions_mut().insert(*page.clone());
                response
            }
        }
    }
}
