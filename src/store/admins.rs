//! Operators and their sign-in attempts.

use super::{Store, StoreError};
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
        Ok(sqlx::query_as("SELECT * FROM admins WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub(crate) async fn admin_by_id(&self, id: i64) -> Result<Option<Admin>, StoreError> {
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

    pub(crate) async fn delete_admin(&self, name: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM admins WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn touch_admin_login(&self, id: i64) -> Result<(), StoreError> {
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
    pub(crate) async fn count_login_attempt(
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
    pub(crate) async fn clear_login_attempts(
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
}
