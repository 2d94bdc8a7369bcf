//! Authorizations that came back: one row per state, written when a callback claims it, together with the
//! code it came with.

use super::writer::Op;
use super::{Store, StoreError, on_pool, per_backend, stored_as_text};
use crate::time::unix_now;

/// A state row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthState {
    pub nonce: String,
    pub scope: String,
    pub next: String,
    pub expires_at: i64,
    pub claimed_at: Option<i64>,
    pub code_hash: Option<String>,
    pub outcome: Option<Outcome>,
    pub openid: Option<String>,
}

/// A verified state as the callback claims it.
#[derive(Debug, Clone, Copy)]
pub struct NewState<'a> {
    pub nonce: &'a str,
    pub scope: &'a str,
    pub next: &'a str,
    pub expires_at: i64,
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

/// Where a claimed state's exchange is, recorded on its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Claimed; the exchange is under way.
    Pending,
    /// The follower is signed in.
    Done,
    /// A Moments snapshot visitor: nothing stored.
    Snapshot,
    /// The exchange failed, or the follower refused.
    Failed,
}
stored_as_text!(Outcome { Pending = "pending", Done = "done", Snapshot = "snapshot", Failed = "failed" });

per_backend! {
    /// Stores the claimed state's row (created when claimed); 1 when it was stored, 0 on any conflict
    /// (the nonce, or the code with another state), which the caller's reads then tell apart.
    pub(in crate::store) async fn claim(
        tx: &mut <Db as sqlx::Database>::Connection,
        row: &OAuthState,
    ) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query(
            "INSERT INTO oauth_states (nonce, scope, next, created_at, expires_at, claimed_at, code_hash, outcome)
             VALUES ($1, $2, $3, $4, $5, $4, $6, 'pending')
             ON CONFLICT DO NOTHING",
        )
        .bind(&row.nonce)
        .bind(&row.scope)
        .bind(&row.next)
        .bind(row.claimed_at)
        .bind(row.expires_at)
        .bind(&row.code_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected())
    }
}

impl Store {
    /// Claims the state for the code whose hash is `code_hash`: exactly one caller across every
    /// instance gets [`Claim::Claimed`] for a code; every later arrival of that code gets
    /// [`Claim::Repeat`]. The row is written here, by the insert that decides: nothing is stored when a
    /// state is issued.
    pub(crate) async fn claim_oauth_state(
        &self,
        state: &NewState<'_>,
        code_hash: &str,
    ) -> Result<Claim, StoreError> {
        let row = OAuthState {
            nonce: state.nonce.to_owned(),
            scope: state.scope.to_owned(),
            next: state.next.to_owned(),
            expires_at: state.expires_at,
            claimed_at: Some(unix_now()),
            code_hash: Some(code_hash.to_owned()),
            outcome: Some(Outcome::Pending),
            openid: None,
        };
        // Through the writer, committed with the other sign-ins' writes (see `save_authorization`).
        if self.writer.op(Op::Claim(Box::new(row.clone()))).await? == 1 {
            return Ok(Claim::Claimed(row));
        }
        Ok(match self.oauth_state(state.nonce).await? {
            Some(row) if row.code_hash.as_deref() == Some(code_hash) => Claim::Repeat(row),
            Some(_) => Claim::Reused,
            // The code is already attached to another state: it is that state's repeat.
            None => self
                .oauth_state_by_code(code_hash)
                .await?
                .map_or(Claim::Unknown, Claim::Repeat),
        })
    }

    /// Marks the state used without a code (the follower refused): a replay of it is refused too.
    /// Returns whether this call spent it.
    pub(crate) async fn consume_oauth_state(
        &self,
        state: &NewState<'_>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        Ok(on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO oauth_states (nonce, scope, next, created_at, expires_at, claimed_at, outcome, finished_at)
             VALUES ($1, $2, $3, $4, $5, $4, 'failed', $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(state.nonce)
        .bind(state.scope)
        .bind(state.next)
        .bind(unix_now())
        .bind(state.expires_at)
        .execute(pool)
        .await?.rows_affected()
        }) == 1)
    }

    /// A state row by nonce.
    pub async fn oauth_state(&self, nonce: &str) -> Result<Option<OAuthState>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM oauth_states WHERE nonce = $1"
        )
        .bind(nonce)
        .fetch_optional(pool)
        .await?))
    }

    /// The row a code was first claimed with.
    pub(crate) async fn oauth_state_by_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<OAuthState>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM oauth_states WHERE code_hash = $1"
        )
        .bind(code_hash)
        .fetch_optional(pool)
        .await?))
    }

    /// Records how a claimed exchange ended (for the profile-storing success, see
    /// [`Store::save_authorization`], which does this in the same transaction).
    pub(crate) async fn finish_oauth_state(
        &self,
        nonce: &str,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| sqlx::query(
            "UPDATE oauth_states SET outcome = $1, finished_at = $2 WHERE nonce = $3"
        )
        .bind(outcome)
        .bind(unix_now())
        .bind(nonce)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Forgets states that expired more than a day ago.
    pub(crate) async fn delete_old_oauth_states(&self) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        Ok(on_pool!(self, |pool| sqlx::query(
            "DELETE FROM oauth_states WHERE expires_at < $1"
        )
        .bind(unix_now() - 86_400)
        .execute(pool)
        .await?
        .rows_affected()))
    }
}
