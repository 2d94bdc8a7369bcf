//! Followers.

use sqlx::{Sqlite, Transaction};

use super::{Store, StoreError};

/// A follower as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub openid: String,
    pub unionid: Option<String>,
    pub nickname: Option<String>,
    pub headimgurl: Option<String>,
    pub subscribed: bool,
    pub subscription_changed_at: Option<i64>,
    pub first_seen_at: i64,
    pub last_seen_at: i64,
}

impl Store {
    /// One follower by OpenID.
    pub async fn user(&self, openid: &str) -> Result<Option<User>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE openid = ?")
            .bind(openid)
            .fetch_optional(&self.pool)
            .await?)
    }
}

/// Records that `openid` sent something at `seen_at`; a (un)subscribe event also sets `subscribed`,
/// unless a newer one (by WeChat's CreateTime) already did.
pub(super) async fn touch(
    tx: &mut Transaction<'_, Sqlite>,
    openid: &str,
    seen_at: i64,
    subscribes: Option<bool>,
    event_time: i64,
) -> Result<(), sqlx::Error> {
    // Only a follower can send messages, so a first message means subscribed.
    let subscribed = subscribes.unwrap_or(true);
    let changed_at = subscribes.map(|_| event_time);
    sqlx::query(
        "INSERT INTO users (openid, subscribed, subscription_changed_at, first_seen_at, last_seen_at) \
         VALUES (?1, ?2, ?3, ?4, ?4) \
         ON CONFLICT (openid) DO UPDATE SET \
           last_seen_at = max(users.last_seen_at, excluded.last_seen_at), \
           subscribed = CASE WHEN excluded.subscription_changed_at >= coalesce(users.subscription_changed_at, 0) \
                        THEN excluded.subscribed ELSE users.subscribed END, \
           subscription_changed_at = CASE WHEN excluded.subscription_changed_at >= coalesce(users.subscription_changed_at, 0) \
                        THEN excluded.subscription_changed_at ELSE users.subscription_changed_at END",
    )
    .bind(openid)
    .bind(subscribed)
    .bind(changed_at)
    .bind(seen_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
