//! The read routes: followers and a follower's conversation.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Caller, ErrorCode, page_size, query};
use crate::store::{MessageQuery, MessageRecord, User, UserCursor, UserQuery};
use crate::web::state::AppState;

/// A follower as the API shows them: what they are, never the tokens web authorization holds.
pub(super) fn follower_json(user: &User) -> Value {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowerList {
    limit: Option<i64>,
    cursor: Option<String>,
    /// A whole OpenID or UnionID, or part of a nickname.
    search: Option<String>,
    subscribed: Option<bool>,
    /// A follower tag's id.
    tag: Option<i64>,
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
pub(super) async fn followers(
    State(app): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    caller.require("followers:read")?;
    let q: FollowerList = query(raw.as_deref())?;
    let limit = page_size(q.limit)?;
    let after = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            decode_cursor(c)
                .ok_or_else(|| ApiError::invalid("the cursor is not one this API gave"))?,
        ),
    };
    let search = q.search.filter(|s| !s.trim().is_empty());
    if search.as_ref().is_some_and(|s| s.chars().count() > 64) {
        return Err(ApiError::invalid("search is at most 64 characters"));
    }
    let query = UserQuery {
        search,
        subscribed: q.subscribed,
        tag: q.tag,
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
pub(super) async fn follower(
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
pub(super) async fn conversation(
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
}
