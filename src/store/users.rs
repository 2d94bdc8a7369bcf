//! Followers: what the webhook learns of them and what they share through web authorization.

use sqlx::QueryBuilder;

use super::writer::Op;
use super::{Dialect, QueueEvent, Store, StoreError, on_pool, per_backend};
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
    /// The scene of the QR code of the follower's latest subscribe, if it came through one.
    pub qr_scene: Option<String>,
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

/// A finished authorization as the writer commits it ([`Store::save_authorization`]).
pub(super) struct Authorization {
    nonce: String,
    openid: String,
    unionid: Option<String>,
    tokens: Tokens,
    profile: Option<Profile>,
    tell: Option<super::NewEvent>,
    at: i64,
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
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM users WHERE openid = $1"
        )
        .bind(openid)
        .fetch_optional(pool)
        .await?))
    }

    /// Stores a completed authorization and marks its state done, in one transaction: the follower's
    /// row is created or updated (one row per openid, however many authorize at once), the profile
    /// replaced when one was fetched, the sign-in's event queued for the endpoints, and never half of it.
    pub(crate) async fn save_authorization(
        &self,
        nonce: &str,
        openid: &str,
        unionid: Option<&str>,
        tokens: &Tokens,
        profile: Option<&Profile>,
        tell: Option<&super::NewEvent>,
    ) -> Result<(), StoreError> {
        // Through the writer: with the claim before it and the session after it, a sign-in is three
        // writes, and each a commit of its own queued every sign-in behind the others' syncs.
        self.writer
            .op(Op::Authorization(Box::new(Authorization {
                nonce: nonce.to_owned(),
                openid: openid.to_owned(),
                unionid: unionid.map(str::to_owned),
                tokens: tokens.clone(),
                profile: profile.cloned(),
                tell: tell.cloned(),
                at: unix_now(),
            })))
            .await?;
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
        on_pool!(self, |pool, sql| {
            let mut tx = pool.begin().await?;
            sql::upsert_profile(&mut tx, openid, None, tokens, profile, unix_now()).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Erases what a follower shared (profile and tokens). The row itself stays while they follow the
    /// account, since the webhook records their subscription; nothing they shared remains.
    pub(crate) async fn erase_profile(&self, openid: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE users SET unionid = NULL, nickname = NULL, headimgurl = NULL, sex = NULL,
                 province = NULL, city = NULL, country = NULL, privilege = NULL, userinfo_json = NULL,
                 scope = NULL, access_token = NULL, access_token_expires_at = NULL,
                 refresh_token = NULL, refresh_token_expires_at = NULL,
                 first_authorized_at = NULL, last_authorized_at = NULL
             WHERE openid = $1",
        )
        .bind(openid)
        .execute(pool)
        .await?.rows_affected()
        });
        Ok(done == 1)
    }

    /// How many followers are stored.
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT count(*) FROM users"
        )
        .fetch_one(pool)
        .await?))
    }
}

/// What `cgi-bin/user/info` tells about a follower.
#[derive(Debug, Clone)]
pub struct FollowerInfo {
    pub unionid: Option<String>,
    pub subscribe_time: Option<i64>,
    pub remark: Option<String>,
    /// JSON array of tag ids.
    pub tags: String,
}

/// Which followers the list shows, in which order, from where.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// A whole OpenID or UnionID, or else part of a nickname.
    pub search: Option<String>,
    pub subscribed: Option<bool>,
    pub authorized: Option<Authorized>,
    /// Followers WeChat tagged with this tag id.
    pub tag: Option<i64>,
    pub sort: UserSort,
    /// The last row of the previous page.
    pub after: Option<UserCursor>,
    pub limit: i64,
}

/// The authorization filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorized {
    /// Granted `snsapi_userinfo`.
    Userinfo,
    /// Granted `snsapi_base` only.
    Base,
    /// Granted either.
    Any,
    /// Never authorized (or erased their data).
    Never,
}

/// The follower list's orders: each walks an index, so every page costs the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserSort {
    #[default]
    LastSeenDesc,
    LastSeenAsc,
    FirstSeenDesc,
    FirstSeenAsc,
}

impl UserSort {
    fn column(self) -> &'static str {
        match self {
            Self::LastSeenDesc | Self::LastSeenAsc => "last_seen_at",
            Self::FirstSeenDesc | Self::FirstSeenAsc => "first_seen_at",
        }
    }

    fn descending(self) -> bool {
        matches!(self, Self::LastSeenDesc | Self::FirstSeenDesc)
    }

    /// The sort value of `user`, for the cursor after it.
    pub(crate) fn key_of(self, user: &User) -> i64 {
        match self {
            Self::LastSeenDesc | Self::LastSeenAsc => user.last_seen_at,
            Self::FirstSeenDesc | Self::FirstSeenAsc => user.first_seen_at,
        }
    }
}

/// Where a page of followers starts: after this sort value and OpenID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCursor {
    pub at: i64,
    pub openid: String,
}

/// OpenIDs and UnionIDs are 28 or 29 characters of letters, digits, `-` and `_`; no nickname search
/// looks like that.
fn looks_like_an_id(s: &str) -> bool {
    (20..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl Store {
    /// Stores what `cgi-bin/user/info` said; a known UnionID is never erased by an answer without one.
    pub(crate) async fn save_follower_info(
        &self,
        openid: &str,
        info: &FollowerInfo,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE users SET unionid = coalesce($1, unionid), subscribe_time = $2, remark = $3, tags = $4,
                 info_fetched_at = $5
             WHERE openid = $6",
        )
        .bind(&info.unionid)
        .bind(info.subscribe_time)
        .bind(&info.remark)
        .bind(&info.tags)
        .bind(unix_now())
        .bind(openid)
        .execute(pool)
        .await?.rows_affected()
        });
        Ok(())
    }

    /// One page of followers (keyset pagination: a deep page costs what the first does).
    pub(crate) async fn list_users(&self, q: &UserQuery) -> Result<Vec<User>, StoreError> {
        Ok(on_pool!(self, |pool, sql| sql::user_page(q)
            .build_query_as()
            .fetch_all(pool)
            .await?))
    }

    /// How many followers match the list's search and filters, counted up to `cap + 1`: a count
    /// above `cap` says "more than `cap`" without reading every match.
    pub(crate) async fn count_matching_users(
        &self,
        q: &UserQuery,
        cap: i64,
    ) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool, sql| {
            let mut query =
                QueryBuilder::new("SELECT count(*) FROM (SELECT 1 FROM users WHERE 1 = 1");
            sql::push_user_filters(&mut query, q);
            query
                .push(" LIMIT ")
                .push_bind(cap + 1)
                .push(") AS matching");
            query.build_query_scalar().fetch_one(pool).await?
        }))
    }

    /// Deletes a follower, their messages, the messages sent to them and their QR code scans; `false` when there was no such follower.
    pub(crate) async fn delete_user(&self, openid: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for sql in [
                "DELETE FROM outbox WHERE openid = $1",
                "DELETE FROM messages WHERE openid = $1",
                "DELETE FROM qr_scans WHERE openid = $1",
            ] {
                sqlx::query(sql).bind(openid).execute(&mut *tx).await?;
            }
            let done = sqlx::query("DELETE FROM users WHERE openid = $1")
                .bind(openid)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            done.rows_affected()
        });
        Ok(done == 1)
    }
}

per_backend! {
    /// The profile and tokens, the event, and the state marked done, in the writer's transaction.
    pub(in crate::store) async fn save_authorization(
        tx: &mut <Db as sqlx::Database>::Connection,
        done: &Authorization,
    ) -> Result<(), sqlx::Error> {
        upsert_profile(
            tx,
            &done.openid,
            done.unionid.as_deref(),
            &done.tokens,
            done.profile.as_ref(),
            done.at,
        )
        .await?;
        if let Some(event) = &done.tell {
            tx.queue_events(&[(event.clone(), done.at)]).await?;
        }
        sqlx::query(
            "UPDATE oauth_states SET outcome = 'done', openid = $1, finished_at = $2 WHERE nonce = $3",
        )
        .bind(&done.openid)
        .bind(done.at)
        .bind(&done.nonce)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn upsert_profile(
    tx: &mut <Db as sqlx::Database>::Connection,
    openid: &str,
    unionid: Option<&str>,
    tokens: &Tokens,
    profile: Option<&Profile>,
    now: i64,
) -> Result<(), sqlx::Error> {
    // A base-scope authorization carries no profile: the stored one is kept (coalesce).
    sqlx::query(
        "INSERT INTO users (openid, unionid, nickname, sex, province, city, country, headimgurl,
             privilege, userinfo_json, scope, access_token, access_token_expires_at, refresh_token,
             refresh_token_expires_at, first_authorized_at, last_authorized_at, subscribed,
             first_seen_at, last_seen_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, FALSE, $18, $19)
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
             last_seen_at = CASE WHEN excluded.last_seen_at > users.last_seen_at
                 THEN excluded.last_seen_at ELSE users.last_seen_at END",
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

    /// The query for one page of followers.
    pub(in crate::store) fn user_page(q: &UserQuery) -> QueryBuilder<Db> {
        let mut sql = QueryBuilder::new("SELECT * FROM users WHERE 1 = 1");
        push_user_filters(&mut sql, q);
        let (column, desc) = (q.sort.column(), q.sort.descending());
        if let Some(after) = &q.after {
            sql.push(format_args!(
                " AND ({column}, openid) {} (",
                if desc { "<" } else { ">" }
            ));
            sql.push_bind(after.at)
                .push(", ")
                .push_bind(after.openid.clone())
                .push(")");
        }
        let dir = if desc { "DESC" } else { "ASC" };
        sql.push(format_args!(" ORDER BY {column} {dir}, openid {dir} LIMIT "));
        sql.push_bind(q.limit);
        sql
    }

    pub(in crate::store) fn push_user_filters(sql: &mut QueryBuilder<Db>, q: &UserQuery) {
    if let Some(search) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if looks_like_an_id(search) {
            // Two index lookups (SQLite's multi-index OR), not a scan.
            sql.push(" AND (openid = ")
                .push_bind(search.to_owned())
                .push(" OR unionid = ")
                .push_bind(search.to_owned())
                .push(")");
        } else {
            <Db as Dialect>::push_nickname_contains(sql, search);
        }
    }
    if let Some(subscribed) = q.subscribed {
        sql.push(" AND subscribed = ").push_bind(subscribed);
    }
    if let Some(tag) = q.tag {
        // `tags` is a JSON array of ids such as [128,2]: with its brackets as commas, ",128,2,".
        sql.push(" AND replace(replace(tags, '[', ','), ']', ',') LIKE ")
            .push_bind(format!("%,{tag},%"));
    }
    match q.authorized {
        Some(Authorized::Userinfo) => {
            sql.push(" AND scope = 'snsapi_userinfo'");
        }
        Some(Authorized::Base) => {
            sql.push(" AND scope = 'snsapi_base'");
        }
        Some(Authorized::Any) => {
            sql.push(" AND scope IS NOT NULL");
        }
        Some(Authorized::Never) => {
            sql.push(" AND scope IS NULL");
        }
        None => {}
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_told_from_nicknames() {
        assert!(looks_like_an_id("oDemo0000000000000xiaoming"));
        assert!(looks_like_an_id("o6_bmasdasdsad6_2sgVt7hMZOPfL"));
        assert!(!looks_like_an_id("李雷"));
        assert!(!looks_like_an_id("user_4242"));
    }

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }
}
