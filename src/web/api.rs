//! The HTTP API under `/api/v1`, for the account's own systems (a CRM, an order system, a support
//! bot): Bearer tokens made with `wxportal token create`, each limited to its scopes, and JSON errors
//! with stable codes (docs/api.md).
//!
//! Errors are `{"error": {"code": "...", "message": "..."}}`. The codes are part of the API: a client
//! may match on them; the messages are for people and may change.

use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::store::{
    ApiToken, MessageQuery, MessageRecord, StoreError, User, UserCursor, UserQuery,
};
use crate::web::state::AppState;

/// Every scope a token can hold, with what it allows.
pub const SCOPES: &[(&str, &str)] = &[
    ("followers:read", "list, search and read followers"),
    ("messages:read", "read a follower's conversation"),
];

/// What a token looks like: a fixed prefix (so secret scanners can find a leaked one) and 256 random
/// bits.
pub const TOKEN_PREFIX: &str = "wxp_";

const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/followers", get(followers))
        .route("/api/v1/followers/{openid}", get(follower))
        .route("/api/v1/followers/{openid}/messages", get(conversation))
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
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidRequest => "invalid_request",
            Self::NotFound => "not_found",
            Self::Internal => "internal",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
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
        response
    }
}

/// The caller's token, checked: a handler taking it runs only for a live token.
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
        match app.store.use_api_token(&crate::oidc::hash(token)).await? {
            Some(found) => Ok(Self(found)),
            None => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "the token is unknown or revoked",
            )),
        }
    }
}

/// A follower as the API shows them: what they are, never the tokens web authorization holds.
fn follower_json(user: &User) -> Value {
    let tags: Vec<i64> = user
        .tags
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    json!({
        "openid": user.openid,
        "unionid": user.unionid,
        "nickname": user.nickname,
        "avatar_url": user.headimgurl,
        "subscribed": user.subscribed,
        "subscription_changed_at": user.subscription_changed_at,
        "subscribe_time": user.subscribe_time,
        "first_seen_at": user.first_seen_at,
        "last_seen_at": user.last_seen_at,
        "sex": user.sex,
        "country": user.country,
        "province": user.province,
        "city": user.city,
        "remark": user.remark,
        "tags": tags,
        "qr_scene": user.qr_scene,
        "authorized_scope": user.scope,
    })
}

fn message_json(record: &MessageRecord) -> Value {
    let m = &record.message;
    json!({
        "id": record.id,
        "type": m.msg_type,
        "event": m.event,
        "msg_id": m.msg_id,
        "created_at": m.created_at,
        "received_at": m.received_at,
        "fields": serde_json::from_str::<Value>(&m.fields).unwrap_or(Value::Null),
        "replied": !m.reply_xml.is_empty(),
    })
}

/// `limit`: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
fn page_size(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("limit must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// A query string the route cannot read is a 400 in the API's own shape.
fn query<T: serde::de::DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("bad query: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowerList {
    limit: Option<i64>,
    cursor: Option<String>,
    /// A whole OpenID or UnionID, or part of a nickname.
    search: Option<String>,
    subscribed: Option<bool>,
}

/// The opaque cursor: the last row's sort value and OpenID.
fn encode_cursor(c: &UserCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", c.at, c.openid))
}

fn decode_cursor(s: &str) -> Option<UserCursor> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
    let (at, openid) = text.split_once(':')?;
    Some(UserCursor {
        at: at.parse().ok()?,
        openid: openid.to_owned(),
    })
}

/// `GET /api/v1/followers`: followers, most recently seen first, a page at a time.
async fn followers(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require("followers:read")?;
    let q: FollowerList = query(raw.as_deref())?;
    let limit = page_size(q.limit)?;
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "the cursor is not one this API gave",
            )
        })?),
    };
    let search = q.search.filter(|s| !s.trim().is_empty());
    if search.as_ref().is_some_and(|s| s.chars().count() > 64) {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "search is at most 64 characters",
        ));
    }
    let query = UserQuery {
        search,
        subscribed: q.subscribed,
        after,
        // One more than asked: whether there is a next page.
        limit: limit + 1,
        ..UserQuery::default()
    };
    let mut users = app.store.list_users(&query).await?;
    let more = users.len() as i64 > limit;
    users.truncate(limit as usize);
    let next = more.then(|| users.last()).flatten().map(|u| {
        encode_cursor(&UserCursor {
            at: query.sort.key_of(u),
            openid: u.openid.clone(),
        })
    });
    Ok(Json(json!({
        "data": users.iter().map(follower_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// `GET /api/v1/followers/{openid}`.
async fn follower(
    State(app): State<AppState>,
    caller: Caller,
    Path(openid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("followers:read")?;
    match app.store.user(&openid).await? {
        Some(user) => Ok(Json(follower_json(&user))),
        None => Err(ApiError::new(ErrorCode::NotFound, "no such follower")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversationQuery {
    limit: Option<i64>,
    /// Messages with an id below this one (the `next_before` of the previous page).
    before: Option<i64>,
}

/// `GET /api/v1/followers/{openid}/messages`: what the follower sent, newest first.
async fn conversation(
    State(app): State<AppState>,
    caller: Caller,
    Path(openid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require("messages:read")?;
    let q: ConversationQuery = query(raw.as_deref())?;
    let limit = page_size(q.limit)?;
    if app.store.user(&openid).await?.is_none() {
        return Err(ApiError::new(ErrorCode::NotFound, "no such follower"));
    }
    let mut messages = app
        .store
        .list_messages(&MessageQuery {
            openid: Some(openid),
            before: q.before,
            limit: limit + 1,
            ..MessageQuery::default()
        })
        .await?;
    let more = messages.len() as i64 > limit;
    messages.truncate(limit as usize);
    let next = more.then(|| messages.last().map(|m| m.id)).flatten();
    Ok(Json(json!({
        "data": messages.iter().map(message_json).collect::<Vec<_>>(),
        "next_before": next,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = UserCursor {
            at: 1_700_000_000,
            openid: "o6_bmjrPTlm6_2sgVt7hMZOPfL2M".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&c)), Some(c));
        assert_eq!(decode_cursor("not base64!"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("abc:o")), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("12")), None);
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_size(Some(MAX_PAGE)).unwrap(), MAX_PAGE);
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(MAX_PAGE + 1)).is_err());
    }
}
