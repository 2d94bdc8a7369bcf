//! Followers: what the webhook learns of them and what they share through web authorization.

use super::{Store, StoreError};
use crate::time::unix_now;

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
    pub sex: Option<i64>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    /// JSON array of strings.
    pub privilege: Option<String>,
    pub userinfo_json: Option<String>,
    pub scope: Option<String>,
    pub access_token: Option<String>,
    pub access_token_expires_at: Option<i64>,
    pub refresh_token: Option<String>,
    pub refresh_token_expires_at: Option<i64>,
    pub first_authorized_at: Option<i64>,
    pub last_authorized_at: Option<i64>,
    /// From `cgi-bin/user/info`, fetched after a subscribe.
    pub subscribe_time: Option<i64>,
    pub remark: Option<String>,
    /// JSON array of tag ids.
    pub tags: Option<String>,
    pub info_fetched_at: Option<i64>,
}

/// The per-follower tokens of web authorization and when they expire.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub scope: String,
    pub access_token: String,
    pub access_token_expires_at: i64,
    pub refresh_token: String,
    pub refresh_token_expires_at: i64,
}

/// The profile `/sns/userinfo` shared.
#[derive(Debug, Clone)]
pub struct Profile {
    pub unionid: Option<String>,
    pub nickname: String,
    pub sex: i64,
    pub province: String,
    pub city: String,
    pub country: String,
    pub headimgurl: String,
    /// JSON array of strings.
    pub privilege: String,
    /// The answer as received.
    pub raw: String,
}

impl Store {
    /// One follower by OpenID.
    pub async fn user(&self, openid: &str) -> Result<Option<User>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE openid = ?")
            .bind(openid)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Stores a completed authorization and marks its state done, in one transaction: the follower's
    /// row is created or updated (one row per openid, however many authorize at once), the profile
    /// replaced when one was fetched, and never half of it.
    pub async fn save_authorization(
        &self,
        nonce: &str,
        openid: &str,
        unionid: Option<&str>,
        tokens: &Tokens,
        profile: Option<&Profile>,
    ) -> Result<(), StoreError> {
        let now = unix_now();
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        upsert_profile(&mut tx, openid, unionid, tokens, profile, now).await?;
        sqlx::query(
            "UPDATE oauth_states SET outcome = 'done', openid = ?, finished_at = ? WHERE nonce = ?",
        )
        .bind(openid)
        .bind(now)
        .bind(nonce)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores renewed tokens and, when fetched, a fresh profile (the "refresh my profile" action).
    pub async fn save_refresh(
        &self,
        openid: &str,
        tokens: &Tokens,
        profile: Option<&Profile>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        upsert_profile(&mut tx, openid, None, tokens, profile, unix_now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Erases what a follower shared (profile and tokens). The row itself stays while they follow the
    /// account, since the webhook records their subscription; nothing they shared remains.
    pub async fn erase_profile(&self, openid: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE users SET unionid = NULL, nickname = NULL, headimgurl = NULL, sex = NULL,
                 province = NULL, city = NULL, country = NULL, privilege = NULL, userinfo_json = NULL,
                 scope = NULL, access_token = NULL, access_token_expires_at = NULL,
                 refresh_token = NULL, refresh_token_expires_at = NULL,
                 first_authorized_at = NULL, last_authorized_at = NULL
             WHERE openid = ?",
        )
        .bind(openid)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many followers are stored.
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }
}

async fn upsert_profile(
    tx: &mut sqlx::SqliteConnection,
    openid: &str,
    unionid: Option<&str>,
    tokens: &Tokens,
    profile: Option<&Profile>,
    now: i64,
) -> Result<(), StoreError> {
    // A base-scope authorization carries no profile: the stored one is kept (coalesce).
    sqlx::query(
        "INSERT INTO users (openid, unionid, nickname, sex, province, city, country, headimgurl,
             privilege, userinfo_json, scope, access_token, access_token_expires_at, refresh_token,
             refresh_token_expires_at, first_authorized_at, last_authorized_at, subscribed,
             first_seen_at, last_seen_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
         ON CONFLICT (openid) DO UPDATE SET
             unionid = coalesce(excluded.unionid, users.unionid),
             nickname = coalesce(excluded.nickname, users.nickname),
             sex = coalesce(excluded.sex, users.sex),
             province = coalesce(excluded.province, users.province),
             city = coalesce(excluded.city, users.city),
             country = coalesce(excluded.country, users.country),
             headimgurl = coalesce(excluded.headimgurl, users.headimgurl),
             privilege = coalesce(excluded.privilege, users.privilege),
             userinfo_json = coalesce(excluded.userinfo_json, users.userinfo_json),
             scope = excluded.scope,
             access_token = excluded.access_token,
             access_token_expires_at = excluded.access_token_expires_at,
             refresh_token = excluded.refresh_token,
             refresh_token_expires_at = excluded.refresh_token_expires_at,
             first_authorized_at = coalesce(users.first_authorized_at, excluded.first_authorized_at),
             last_authorized_at = excluded.last_authorized_at,
             last_seen_at = max(users.last_seen_at, excluded.last_seen_at)",
    )
    .bind(openid)
    .bind(unionid.or(profile.and_then(|p| p.unionid.as_deref())))
    .bind(profile.map(|p| &p.nickname))
    .bind(profile.map(|p| p.sex))
    .bind(profile.map(|p| &p.province))
    .bind(profile.map(|p| &p.city))
    .bind(profile.map(|p| &p.country))
    .bind(profile.map(|p| &p.headimgurl))
    .bind(profile.map(|p| &p.privilege))
    .bind(profile.map(|p| &p.raw))
    .bind(&tokens.scope)
    .bind(&tokens.access_token)
    .bind(tokens.access_token_expires_at)
    .bind(&tokens.refresh_token)
    .bind(tokens.refresh_token_expires_at)
    .bind(now)
    .bind(now)
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
