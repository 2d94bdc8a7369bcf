//! The HTTP API under `/api/v1`, for the account's own systems (a CRM, an order system, a support
//! bot): Bearer tokens made with `wxportal token create`, each limited to its scopes and to a rate,
//! JSON errors with stable codes, idempotency keys on every POST, and an OpenAPI 3.1 document
//! (docs/api.md).
//!
//! Errors are `{"error": {"code": "...", "message": "..."}}`. The codes are part of the API: a client
//! may match on them; the messages are for people and may change.

mod read;
pub mod tokens;
mod write;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::store::{ApiToken, Made, Once, StoreError};
use crate::web::state::AppState;

/// Every scope a token can hold, with what it allows.
pub const SCOPES: &[(&str, &str)] = &[
    ("followers:read", "list, search and read followers"),
    ("messages:read", "read a follower's conversation"),
    (
        "messages:send",
        "answer a follower with a customer-service message",
    ),
    (
        "templates:send",
        "send template messages and follow their campaigns",
    ),
    ("qr:write", "create QR codes with a scene and read them"),
];

/// What a token looks like: a fixed prefix (so secret scanners can find a leaked one) and 256 random
/// bits.
pub const TOKEN_PREFIX: &str = "wxp_";

/// The OpenAPI 3.1 document, served as is and checked against the real responses by the tests.
pub const OPENAPI: &str = include_str!("openapi.json");

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/api/v1/followers", get(read::followers))
        .route("/api/v1/followers/{openid}", get(read::follower))
        .route(
            "/api/v1/followers/{openid}/messages",
            get(read::conversation),
        )
        .route("/api/v1/followers/{openid}/answers", post(write::answer))
        .route("/api/v1/answers/{id}", get(write::answer_status))
        .route("/api/v1/templates/send", post(write::send_template))
        .route("/api/v1/campaigns/{id}", get(write::campaign))
        .route("/api/v1/qr-codes", post(write::create_qr))
        .route("/api/v1/qr-codes/{id}", get(write::qr_code))
        .route(
            "/api/v1/{*rest}",
            any(|| async { ApiError::new(ErrorCode::NotFound, "no such API route") }),
        )
}

/// The stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// No token, or one that is unknown or revoked.
    Unauthorized,
    /// The token lacks the scope the route needs.
    InsufficientScope,
    InvalidRequest,
    NotFound,
    /// The follower's 48-hour customer-service window is closed.
    WindowClosed,
    /// An `Idempotency-Key` sent again with a different request.
    IdempotencyKeyReused,
    /// The token's requests are over its rate: wait `Retry-After` seconds.
    RateLimited,
    /// WeChat refused or failed what the request needed.
    Upstream,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidRequest => "invalid_request",
            Self::NotFound => "not_found",
            Self::WindowClosed => "window_closed",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::RateLimited => "rate_limited",
            Self::Upstream => "upstream",
            Self::Internal => "internal",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::WindowClosed => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream => StatusCode::BAD_GATEWAY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "an API request failed");
        Self::new(
            ErrorCode::Internal,
            "the server could not complete the request",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": {"code": self.code.as_str(), "message": self.message}}));
        let mut response = (self.code.status(), body).into_response();
        // RFC 6750 §3: how to authenticate, and why the token was not enough.
        let challenge = match self.code {
            ErrorCode::Unauthorized => Some("Bearer realm=\"wxportal\"".to_owned()),
            ErrorCode::InsufficientScope => Some(format!(
                "Bearer realm=\"wxportal\", error=\"insufficient_scope\", error_description=\"{}\"",
                self.message
            )),
            _ => None,
        };
        crate::web::error::set_challenge(&mut response, challenge);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The caller's token, checked: a handler taking it runs only for a live token within its rate.
pub struct Caller(ApiToken);

impl Caller {
    fn require(&self, scope: &str) -> Result<(), ApiError> {
        if self.0.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::InsufficientScope,
                format!("this route needs the scope {scope}"),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "send an API token as `Authorization: Bearer wxp_…`",
                )
            })?;
        // Anything not shaped like a token is refused before the database is asked.
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 100 {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "this is not an API token",
            ));
        }
        let Some(found) = app.store.use_api_token(&crate::oidc::hash(token)).await? else {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "the token is unknown or revoked",
            ));
        };
        if let Err(secs) = app.limits.api.check(&found.id) {
            tracing::warn!(
                token = found.id,
                retry_after = secs,
                "API rate limit reached"
            );
            return Err(ApiError {
                retry_after: Some(secs),
                ..ApiError::new(
                    ErrorCode::RateLimited,
                    format!("this token is over its rate; try again in {secs} s"),
                )
            });
        }
        Ok(Self(found))
    }
}

/// `limit`: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
fn page_size(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_PAGE}"
        ))),
    }
}

/// A query string the route cannot read is a 400 in the API's own shape.
fn query<T: serde::de::DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|e| ApiError::invalid(format!("bad query: {e}")))
}

/// A JSON body the route cannot read is a 400 in the API's own shape.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::invalid(format!("bad JSON body: {e}")))
}

/// The longest `Idempotency-Key` accepted (Stripe's bound).
const MAX_KEY: usize = 255;

/// Where a POST stands with its `Idempotency-Key` (docs/api.md).
enum Idempotency {
    /// Not made before: make it, recording the key (if one was sent) in the same commit.
    Fresh(Option<Once>),
    /// The key's first request made this; answer with it.
    Made(i64),
}

impl Idempotency {
    /// Reads the key and looks for what it made. `route` and `body` are the request, hashed: the key
    /// may only be sent again with the same request.
    async fn of(
        app: &AppState,
        caller: &Caller,
        headers: &HeaderMap,
        route: &str,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        let Some(value) = headers.get("idempotency-key") else {
            return Ok(Self::Fresh(None));
        };
        let key = value
            .to_str()
            .ok()
            .filter(|k| {
                !k.is_empty() && k.len() <= MAX_KEY && k.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "an Idempotency-Key is 1 to {MAX_KEY} visible ASCII characters"
                ))
            })?;
        let mut request = route.as_bytes().to_vec();
        request.push(b'\n');
        request.extend_from_slice(body);
        let once = Once {
            token_id: caller.0.id.clone(),
            key: key.to_owned(),
            request_hash: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&request)),
        };
        match app.store.made_with(&once.token_id, &once.key).await? {
            None => Ok(Self::Fresh(Some(once))),
            Some(made) => Self::replay(&once, made).map(Self::Made),
        }
    }

    fn replay(once: &Once, made: Made) -> Result<i64, ApiError> {
        if made.request_hash == once.request_hash {
            Ok(made.resource_id)
        } else {
            Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was sent with a different request",
            ))
        }
    }

    /// After an effect failed with [`StoreError::KeyTaken`] (a concurrent request with the same key
    /// won): what the winner made.
    async fn after_race(app: &AppState, once: &Once) -> Result<i64, ApiError> {
        match app.store.made_with(&once.token_id, &once.key).await? {
            Some(made) => Self::replay(once, made),
            None => Err(StoreError::KeyTaken.into()),
        }
    }
}

/// A created thing's answer, marked when it is a replay of an earlier request's.
fn created(status: StatusCode, replayed: bool, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_size(Some(MAX_PAGE)).unwrap(), MAX_PAGE);
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(MAX_PAGE + 1)).is_err());
    }
}
