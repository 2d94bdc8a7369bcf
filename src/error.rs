//! The one error type handlers return: status mapped in one place, internal details logged, never shown.

use axum::http::StatusCode;
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
}

impl AppError {
    pub fn bad_request(reason: &'static str, detail: impl ToString) -> Self {
        Self::BadRequest {
            reason,
            detail: detail.to_string(),
        }
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
        }
    }
}
