//! Operators and their sign-in failures, and the reads behind the admin area's lists and dashboard.

use sqlx::{QueryBuilder, Sqlite};

use super::{MessageRecord, Store, StoreError, User};
use crate::time::{BEIJING_OFFSET, beijing_day, unix_now};

/// Sign-in attempts counted within the window, the current one included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginAttempts {
    /// To this account from this client address.
    pub pair: i64,
    /// From this client address, to any account.
    pub address: i64,
    /// To this account, from any address.
    pub account: i64,
}

/// An operator as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Admin {
    pub id: i64,
    pub name: String,
    /// argon2id, PHC string.
    pub password_hash: String,
    pub created_at: i64,
    pub password_changed_at: i64,
    pub last_login_at: Option<i64>,
}

/// Which followers the list shows, in which order, from where.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// A whole OpenID or UnionID, or else part of a nickname.
    pub search: Option<String>,
    pub subscribed: Option<bool>,
    pub authorized: Option<Authorized>,
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
    pub fn key_of(self, user: &User) -> i64 {
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

/// Which messages the list shows: newest first, before `before` (an id).
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    pub msg_type: Option<String>,
    pub event: Option<String>,
    pub openid: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// The dashboard's figures.
#[derive(Debug, Clone)]
pub struct Stats {
    pub users: i64,
    pub subscribed: i64,
    pub authorized: i64,
    pub messages_today: i64,
    pub messages_30_days: i64,
    /// Messages per day over the last 30 days, oldest first (day = days since the epoch, Beijing time).
    pub per_day: Vec<(i64, i64)>,
}

/// OpenIDs and UnionIDs are 28 or 29 characters of letters, digits, `-` and `_`; no nickname search
/// looks like that.
fn looks_like_an_id(s: &str) -> bool {
    (20..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl Store {
    pub async fn admin_by_name(&self, name: &str) -> Result<Option<Admin>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM admins WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn admin_by_id(&self, id: i64) -> Result<Option<Admin>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM admins WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn admins(&self) -> Result<Vec<Admin>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM admins ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Creates an admin; `false` when the name is taken.
    pub async fn create_admin(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        let done = sqlx::query(
            "INSERT INTO admins (name, password_hash, created_at, password_changed_at)
             VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(password_hash)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Replaces an admin's password, which ends their sessions; `false` when there is no such admin.
    pub async fn set_admin_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        // Strictly increasing, so even two changes within a second end the sessions of the first.
        let done = sqlx::query(
            "UPDATE admins SET password_hash = ?,
                 password_changed_at = max(?, password_changed_at + 1) WHERE name = ?",
        )
        .bind(password_hash)
        .bind(unix_now())
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_admin(&self, name: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM admins WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn touch_admin_login(&self, id: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("UPDATE admins SET last_login_at = ? WHERE id = ?")
            .bind(unix_now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Counts a sign-in attempt before its password is checked, forgetting those before `since`, and
    /// returns the attempts within the window (this one included): by this account from this address,
    /// from this address to any account, and to this account from anywhere. One transaction, so
    /// concurrent attempts each see the ones before them.
    pub async fn count_login_attempt(
        &self,
        account: &str,
        address: &str,
        since: i64,
    ) -> Result<LoginAttempts, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM login_failures WHERE at < ?")
            .bind(since)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO login_failures (account, address, at) VALUES (?, ?, ?)")
            .bind(account)
            .bind(address)
            .bind(unix_now())
            .execute(&mut *tx)
            .await?;
        let (pair, address, account): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM login_failures WHERE account = ?1 AND address = ?2),
                    (SELECT count(*) FROM login_failures WHERE address = ?2),
                    (SELECT count(*) FROM login_failures WHERE account = ?1)",
        )
        .bind(account)
        .bind(address)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(LoginAttempts {
            pair,
            address,
            account,
        })
    }

    /// A successful sign-in forgets the attempts of this account from this address only: failures
    /// from elsewhere keep slowing that name down.
    pub async fn clear_login_attempts(
        &self,
        account: &str,
        address: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("DELETE FROM login_failures WHERE account = ? AND address = ?")
            .bind(account)
            .bind(address)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One page of followers (keyset pagination: a deep page costs what the first does).
    pub async fn list_users(&self, q: &UserQuery) -> Result<Vec<User>, StoreError> {
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT * FROM users WHERE 1 = 1");
        push_user_filters(&mut sql, q);
        let (column, desc) = (q.sort.column(), q.sort.descending());
        if let Some(after) = &q.after {
            sql.push(format_args!(
                " AND ({column}, openid) {} (",
                if desc { "<" } else { ">" }
            ));
            sql.push_bind(after.at)
                .push(", ")
                .push_bind(&after.openid)
                .push(")");
        }
        let dir = if desc { "DESC" } else { "ASC" };
        sql.push(format_args!(
            " ORDER BY {column} {dir}, openid {dir} LIMIT "
        ));
        sql.push_bind(q.limit);
        Ok(sql.build_query_as().fetch_all(&self.pool).await?)
    }

    /// How many followers match the list's search and filters.
    pub async fn count_matching_users(&self, q: &UserQuery) -> Result<i64, StoreError> {
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM users WHERE 1 = 1");
        push_user_filters(&mut sql, q);
        Ok(sql.build_query_scalar().fetch_one(&self.pool).await?)
    }

    /// Deletes a follower and their messages; `false` when there was no such follower.
    pub async fn delete_user(&self, openid: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM outbox WHERE openid = ?")
            .bind(openid)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM messages WHERE openid = ?")
            .bind(openid)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM users WHERE openid = ?")
            .bind(openid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// One page of messages, newest first.
    pub async fn list_messages(&self, q: &MessageQuery) -> Result<Vec<MessageRecord>, StoreError> {
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT * FROM messages WHERE 1 = 1");
        if let Some(t) = &q.msg_type {
            sql.push(" AND msg_type = ").push_bind(t);
        }
        if let Some(e) = &q.event {
            sql.push(" AND event = ").push_bind(e);
        }
        if let Some(o) = &q.openid {
            sql.push(" AND openid = ").push_bind(o);
        }
        if let Some(before) = q.before {
            sql.push(" AND id < ").push_bind(before);
        }
        sql.push(" ORDER BY id DESC LIMIT ").push_bind(q.limit);
        Ok(sql.build_query_as().fetch_all(&self.pool).await?)
    }

    pub async fn message(&self, id: i64) -> Result<Option<MessageRecord>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM messages WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The message types and events seen, for the list's filter.
    pub async fn message_kinds(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        Ok(
            sqlx::query_as(
                "SELECT DISTINCT msg_type, event FROM messages ORDER BY msg_type, event",
            )
            .fetch_all(&self.pool)
            .await?,
        )
    }

    /// The dashboard's counts and the 30-day message chart.
    pub async fn stats(&self, now: i64) -> Result<Stats, StoreError> {
        let (users, subscribed, authorized): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(subscribed), 0), count(scope) FROM users",
        )
        .fetch_one(&self.pool)
        .await?;
        let today = beijing_day(now);
        let first_day = today - 29;
        let since = first_day * 86_400 - BEIJING_OFFSET;
        let counted: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT (received_at + ?) / 86400 AS day, count(*) FROM messages
             WHERE received_at >= ? GROUP BY day",
        )
        .bind(BEIJING_OFFSET)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let per_day: Vec<(i64, i64)> = (first_day..=today)
            .map(|d| {
                let n = counted.iter().find(|(day, _)| *day == d).map_or(0, |c| c.1);
                (d, n)
            })
            .collect();
        Ok(Stats {
            users,
            subscribed,
            authorized,
            messages_today: per_day.last().map_or(0, |d| d.1),
            messages_30_days: per_day.iter().map(|d| d.1).sum(),
            per_day,
        })
    }
}

fn push_user_filters(sql: &mut QueryBuilder<Sqlite>, q: &UserQuery) {
    if let Some(search) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if looks_like_an_id(search) {
            // Two index lookups (SQLite's multi-index OR), not a scan.
            sql.push(" AND (openid = ")
                .push_bind(search.to_owned())
                .push(" OR unionid = ")
                .push_bind(search.to_owned())
                .push(")");
        } else {
            sql.push(" AND nickname LIKE ")
                .push_bind(format!("%{}%", escape_like(search)))
                .push(" ESCAPE '\\'");
        }
    }
    if let Some(subscribed) = q.subscribed {
        sql.push(" AND subscribed = ").push_bind(subscribed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_days_turn_at_midnight_utc_plus_8() {
        // 2026-11-21 15:59:59 UTC is 23:59:59 in Beijing; one second later it is the 22nd there.
        let before = 1_795_276_799;
        assert_eq!(beijing_day(before) + 1, beijing_day(before + 1));
    }

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
