//! Idempotency keys on the API's POSTs (docs/api.md): a retried request makes nothing twice.
//!
//! A key is recorded in the same transaction as what its request made (a job, a campaign, a QR code)
//! and names it. A retry with the same key and the same request is answered with that thing; one with
//! a different request is refused. Two requests racing with one key: the second's transaction finds
//! the key taken and rolls back, so exactly one of them commits an effect.

use std::future::Future;

use super::{Store, StoreError, on_pool, per_backend};
use crate::time::unix_now;

/// How long a key is remembered. Clients retry within minutes; a day covers a retry after an outage.
pub const KEEP_SECS: i64 = 86_400;

/// The key a request came with: whose, which, and a hash of the request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Once {
    pub token_id: String,
    pub key: String,
    pub request_hash: String,
}

/// What a key's first request made.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Made {
    pub request_hash: String,
    pub resource_id: i64,
}

per_backend! {
    pub(super) async fn record(
        conn: &mut <Db as sqlx::Database>::Connection,
        once: &Once,
        resource_id: i64,
    ) -> Result<bool, sqlx::Error> {
        let inserted = sqlx::query::<Db>(
            "INSERT INTO api_idempotency (token_id, key, request_hash, resource_id, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&once.token_id)
        .bind(&once.key)
        .bind(&once.request_hash)
        .bind(resource_id)
        .bind(unix_now())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }
}

/// Records, inside the transaction that made `resource_id`, that `once` made it.
pub(crate) trait RecordOnce: Send {
    /// Inserts the key; false when it is there already.
    fn insert_key(
        &mut self,
        once: &Once,
        resource_id: i64,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;

    /// [`StoreError::KeyTaken`] when another request recorded the key first: the caller's transaction
    /// must then roll back (dropping it does).
    fn record_once(
        &mut self,
        once: Option<&Once>,
        resource_id: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            match once {
                Some(once) if !self.insert_key(once, resource_id).await? => {
                    Err(StoreError::KeyTaken)
                }
                _ => Ok(()),
            }
        }
    }
}

impl RecordOnce for sqlx::SqliteConnection {
    async fn insert_key(&mut self, once: &Once, resource_id: i64) -> Result<bool, sqlx::Error> {
        sqlite::record(self, once, resource_id).await
    }
}

impl RecordOnce for sqlx::PgConnection {
    async fn insert_key(&mut self, once: &Once, resource_id: i64) -> Result<bool, sqlx::Error> {
        postgres::record(self, once, resource_id).await
    }
}

impl Store {
    /// What `token_id`'s request with `key` made, if one did in the last [`KEEP_SECS`].
    pub async fn made_with(&self, token_id: &str, key: &str) -> Result<Option<Made>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT request_hash, resource_id FROM api_idempotency
             WHERE token_id = $1 AND key = $2 AND created_at >= $3"
        )
        .bind(token_id)
        .bind(key)
        .bind(unix_now() - KEEP_SECS)
        .fetch_optional(pool)
        .await?))
    }

    /// Forgets keys older than [`KEEP_SECS`]; how many.
    pub(crate) async fn delete_old_idempotency_keys(&self) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        Ok(on_pool!(self, |pool| sqlx::query(
            "DELETE FROM api_idempotency WHERE created_at < $1"
        )
        .bind(unix_now() - KEEP_SECS)
        .execute(pool)
        .await?
        .rows_affected()))
    }
}
