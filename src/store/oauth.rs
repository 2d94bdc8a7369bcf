//! Authorizations in progress: one row per state, claimed once, together with the code it came back with.

use super::{Store, StoreError, unix_now};

/// A state row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthState {
    pub nonce: String,
    pub scope: String,
    pub next: String,
    pub expires_at: i64,
    pub claimed_at: Option<i64>,
    pub code_hash: Option<String>,
    pub outcome: Option<String>,
    pub openid: Option<String>,
}

/// The outcome of claiming a state for a code.
#[derive(Debug, Clone)]
pub enum Claim {
    /// This caller owns the exchange of the code.
    Claimed(OAuthState),
    /// The same code came back before: the row of its first arrival.
    Repeat(OAuthState),
    /// The state was already used with another code.
    Reused,
    /// No such state (never issued here, or cleaned up after expiry).
    Unknown,
}

/// How an exchange ended, recorded on its state row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Snapshot,
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Snapshot => "snapshot",
            Self::Failed => "failed",
        }
    }
}

impl Store {
    /// Records a state issued at `/auth/login`.
    pub async fn create_oauth_state(
        &self,
        nonce: &str,
        scope: &str,
        next: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_states (nonce, scope, next, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(nonce)
        .bind(scope)
        .bind(next)
        .bind(unix_now())
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Claims `nonce` for the code whose hash is `code_hash`: exactly one caller across every instance
    /// gets [`Claim::Claimed`] for a code; every later arrival of that code gets [`Claim::Repeat`].
    pub async fn claim_oauth_state(
        &self,
        nonce: &str,
        code_hash: &str,
    ) -> Result<Claim, StoreError> {
        let claimed = sqlx::query_as::<_, OAuthState>(
            "UPDATE oauth_states SET claimed_at = ?, code_hash = ?, outcome = 'pending'
             WHERE nonce = ? AND claimed_at IS NULL
             RETURNING *",
        )
        .bind(unix_now())
        .bind(code_hash)
        .bind(nonce)
        .fetch_optional(&self.pool)
        .await;
        match claimed {
            Ok(Some(row)) => return Ok(Claim::Claimed(row)),
            Ok(None) => {}
            // The code is already attached to another state: it is that state's repeat.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Ok(self
                    .oauth_state_by_code(code_hash)
                    .await?
                    .map_or(Claim::Unknown, Claim::Repeat));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(match self.oauth_state(nonce).await? {
            None => Claim::Unknown,
            Some(row) if row.code_hash.as_deref() == Some(code_hash) => Claim::Repeat(row),
            Some(_) => Claim::Reused,
        })
    }

    /// Marks the state used without a code (the follower refused): a replay of it is refused too.
    pub async fn consume_oauth_state(&self, nonce: &str) -> Result<Option<OAuthState>, StoreError> {
        Ok(sqlx::query_as(
            "UPDATE oauth_states SET claimed_at = ?1, outcome = 'failed', finished_at = ?1
             WHERE nonce = ?2 AND claimed_at IS NULL RETURNING *",
        )
        .bind(unix_now())
        .bind(nonce)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A state row by nonce.
    pub async fn oauth_state(&self, nonce: &str) -> Result<Option<OAuthState>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM oauth_states WHERE nonce = ?")
            .bind(nonce)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The row a code was first claimed with.
    pub async fn oauth_state_by_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<OAuthState>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM oauth_states WHERE code_hash = ?")
                .bind(code_hash)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Records how a claimed exchange ended (for the profile-storing success, see
    /// [`Store::save_authorization`], which does this in the same transaction).
    pub async fn finish_oauth_state(
        &self,
        nonce: &str,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE oauth_states SET outcome = ?, finished_at = ? WHERE nonce = ?")
            .bind(outcome.as_str())
            .bind(unix_now())
            .bind(nonce)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets states that expired more than a day ago.
    pub async fn delete_old_oauth_states(&self) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM oauth_states WHERE expires_at < ?")
            .bind(unix_now() - 86_400)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// A value generated once and shared by every instance: the first caller's `generate()` wins.
    pub async fn setting_or_insert(
        &self,
        name: &str,
        generate: impl FnOnce() -> String,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(generate())
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
