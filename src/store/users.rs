//! Followers.

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
