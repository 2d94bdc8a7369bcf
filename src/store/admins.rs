//! Operators and their sign-in attempts.

use super::{Store, StoreError, on_pool};
use crate::time::unix_now;

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

impl Store {
    pub async fn admin_by_name(&self, name: &str) -> Result<Option<Admin>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM admins WHERE lower(name) = lower($1)"
        )
        .bind(name)
        .fetch_optional(pool)
        .await?))
    }

    pub(crate) async fn admin_by_id(&self, id: i64) -> Result<Option<Admin>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM admins WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    pub async fn admins(&self) -> Result<Vec<Admin>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM admins ORDER BY name"
        )
        .fetch_all(pool)
        .await?))
    }

    /// Creates an admin; `false` when the name is taken.
    pub async fn create_admin(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        let done = on_pool!(self, |pool| sqlx::query(
            "INSERT INTO admins (name, password_hash, created_at, password_changed_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(password_hash)
        .bind(now)
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Replaces an admin's password, which ends their sessions; `false` when there is no such admin.
    pub async fn set_admin_password(
        &self,
        name: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        // Strictly increasing, so even two changes within a second end the sessions of the first.
        let done = on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE admins SET password_hash = $1,
                 password_changed_at = CASE WHEN $2 > password_changed_at THEN $2 ELSE password_changed_at + 1 END
             WHERE lower(name) = lower($3)",
        )
        .bind(password_hash)
        .bind(unix_now())
        .bind(name)
        .execute(pool)
        .await?.rows_affected()
        });
        Ok(done == 1)
    }

    pub(crate) async fn delete_admin(&self, name: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = on_pool!(self, |pool| sqlx::query(
            "DELETE FROM admins WHERE lower(name) = lower($1)"
        )
        .bind(name)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    pub(crate) async fn touch_admin_login(&self, id: i64) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| sqlx::query(
            "UPDATE admins SET last_login_at = $1 WHERE id = $2"
        )
        .bind(unix_now())
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Counts a sign-in attempt before its password is checked, forgetting those before `since`, and
    /// returns the attempts within the window (this one included): by this account from this address,
    /// from this address to any account, and to this account from anywhere. One transaction, so
    /// concurrent attempts each see the ones before them.
    pub(crate) async fn count_login_attempt(
        &self,
        account: &str,
        address: &str,
        since: i64,
    ) -> Result<LoginAttempts, StoreError> {
        let _turn = self.write_turn().await;
        // Names are compared regardless of letter case; the rows keep them in lower case.
        let account = &account.to_lowercase();
        let (pair, address, account) = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM login_failures WHERE at < $1")
                .bind(since)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO login_failures (account, address, at) VALUES ($1, $2, $3)")
                .bind(account)
                .bind(address)
                .bind(unix_now())
                .execute(&mut *tx)
                .await?;
            let (pair, address, account): (i64, i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM login_failures WHERE account = $1 AND address = $2),
                    (SELECT count(*) FROM login_failures WHERE address = $2),
                    (SELECT count(*) FROM login_failures WHERE account = $1)",
            )
            .bind(account)
            .bind(address)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            (pair, address, account)
        });
        Ok(LoginAttempts {
            pair,
            address,
            account,
        })
    }

    /// A successful sign-in forgets the attempts of this account from this address only: failures
    /// from elsewhere keep slowing that name down.
    pub(crate) async fn clear_login_attempts(
        &self,
        account: &str,
        address: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| sqlx::query(
            "DELETE FROM login_failures WHERE account = $1 AND address = $2"
        )
        .bind(account.to_lowercase())
        .bind(address)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }
}
