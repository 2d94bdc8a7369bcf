//! The HTTP API's tokens: who may call `/api/v1`, and what each may do. A token is kept as its SHA-256
//! only; the database never holds one that could be used.

use super::{Store, StoreError, on_pool};
use crate::time::unix_now;

/// A token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    #[sqlx(skip)]
    pub scopes: Vec<String>,
    #[sqlx(rename = "scopes")]
    scope_text: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiToken {
    fn read(mut self) -> Self {
        self.scopes = self.scope_text.split(' ').map(str::to_owned).collect();
        self
    }

    pub fn allows(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// How often a token's `last_used_at` is brought up to date: a busy token costs one write a minute.
const USE_RECORDED_EVERY: i64 = 60;

impl Store {
    pub async fn create_api_token(
        &self,
        id: &str,
        name: &str,
        token_hash: &str,
        scopes: &[String],
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(id)
        .bind(name)
        .bind(token_hash)
        .bind(scopes.join(" "))
        .bind(unix_now())
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Every token, newest first, revoked ones included.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<ApiToken> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, name, scopes, created_at, last_used_at, revoked_at FROM api_tokens
             ORDER BY created_at DESC, id"
        )
        .fetch_all(pool)
        .await?);
        Ok(rows.into_iter().map(ApiToken::read).collect())
    }

    /// The live token with this hash, its use recorded (at most once a minute).
    pub async fn use_api_token(&self, token_hash: &str) -> Result<Option<ApiToken>, StoreError> {
        let row: Option<ApiToken> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, name, scopes, created_at, last_used_at, revoked_at FROM api_tokens
             WHERE token_hash = $1 AND revoked_at IS NULL"
        )
        .bind(token_hash)
        .fetch_optional(pool)
        .await?);
        let Some(token) = row.map(ApiToken::read) else {
            return Ok(None);
        };
        let now = unix_now();
        if token
            .last_used_at
            .is_none_or(|at| at <= now - USE_RECORDED_EVERY)
        {
            let _turn = self.write_turn().await;
            on_pool!(self, |pool| sqlx::query(
                "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2
                 AND (last_used_at IS NULL OR last_used_at <= $3)"
            )
            .bind(now)
            .bind(&token.id)
            .bind(now - USE_RECORDED_EVERY)
            .execute(pool)
            .await?
            .rows_affected());
        }
        Ok(Some(token))
    }

    /// Revokes a token at once; `false` when there is no live token with this id.
    pub async fn revoke_api_token(&self, id: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL"
        )
        .bind(unix_now())
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }
}
