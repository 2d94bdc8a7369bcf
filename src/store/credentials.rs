//! The account's shared credentials (access_token, jsapi_ticket): their values, the lease that lets one
//! process fetch for all, and the daily count of fetches.

use sqlx::FromRow;

use super::{Store, StoreError, on_pool, per_backend};
use crate::time::{beijing_day, unix_now};

/// A credential's row: the value (if any), its expiry and who is fetching a new one.
#[derive(Debug, Clone, FromRow)]
pub struct CredentialRow {
    pub kind: String,
    pub value: Option<String>,
    /// Unix seconds; -1 once WeChat refused the value (40001).
    pub expires_at: i64,
    pub fetched_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
}

impl CredentialRow {
    /// WeChat said the value is no good: the next fetch must force a new one.
    pub fn refused(&self) -> bool {
        self.value.is_some() && self.expires_at == -1
    }
}

impl Store {
    pub async fn credential(&self, kind: &str) -> Result<CredentialRow, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM credentials WHERE kind = $1"
        )
        .bind(kind)
        .fetch_one(pool)
        .await?))
    }

    /// Takes the right to fetch `kind` until `until`, unless another owner holds an unexpired lease or
    /// the row is no longer the one `seen`: another process stored a value since it was read (and gave up
    /// its lease), and that value is the one to use, not a reason for a second fetch.
    pub(crate) async fn take_credential_lease(
        &self,
        kind: &str,
        owner: &str,
        until: i64,
        seen: &CredentialRow,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = on_pool!(self, |pool| sqlx::query(
            "UPDATE credentials SET lease_owner = $1, lease_until = $2
             WHERE kind = $3 AND (lease_until < $4 OR lease_owner = $5)
                 AND coalesce(value, '') = $6 AND expires_at = $7",
        )
        .bind(owner)
        .bind(until)
        .bind(kind)
        .bind(unix_now())
        .bind(owner)
        .bind(seen.value.as_deref().unwrap_or_default())
        .bind(seen.expires_at)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Stores a freshly fetched value, counts the fetch and gives up the lease.
    pub(crate) async fn save_credential(
        &self,
        kind: &str,
        value: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        on_pool!(self, |pool, sql| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                    "UPDATE credentials SET value = $1, expires_at = $2, fetched_at = $3, lease_owner = NULL,
                 lease_until = 0, last_error = NULL, last_error_at = NULL
             WHERE kind = $4",
                )
                .bind(value)
                .bind(expires_at)
                .bind(now)
                .bind(kind)
                .execute(&mut *tx)
                .await?;
            sql::count_fetch(&mut tx, kind, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records a failed fetch (it counts against the quota too) and gives up the lease.
    pub(crate) async fn fail_credential(&self, kind: &str, error: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        on_pool!(self, |pool, sql| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE credentials SET lease_owner = NULL, lease_until = 0, last_error = $1,
                 last_error_at = $2
             WHERE kind = $3",
            )
            .bind(error)
            .bind(now)
            .bind(kind)
            .execute(&mut *tx)
            .await?;
            sql::count_fetch(&mut tx, kind, now).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Marks `value` refused by WeChat, if it is still the stored one (many callers may report the same
    /// refusal; only the first changes anything, and a newer value is never touched).
    pub(crate) async fn refuse_credential(
        &self,
        kind: &str,
        value: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE credentials SET expires_at = -1 WHERE kind = $1 AND value = $2 AND expires_at <> -1",
        )
        .bind(kind)
        .bind(value)
        .execute(pool)
        .await?.rows_affected()
        });
        Ok(done == 1)
    }

    /// Fetches of `kind` made today (Beijing time), successful or not.
    pub(crate) async fn credential_fetches_today(&self, kind: &str) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(
            "SELECT coalesce((SELECT count FROM credential_fetches WHERE day = $1 AND kind = $2), 0)",
        )
        .bind(beijing_day(unix_now()).to_string())
        .bind(kind)
        .fetch_one(pool)
        .await?
        }))
    }
}

per_backend! {
    pub(in crate::store) async fn count_fetch(
        conn: &mut <Db as sqlx::Database>::Connection,
        kind: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO credential_fetches (day, kind, count) VALUES ($1, $2, 1)
             ON CONFLICT (day, kind) DO UPDATE SET count = credential_fetches.count + 1",
        )
        .bind(beijing_day(now).to_string())
        .bind(kind)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::SqliteSync;
    use crate::store::Store;
    use crate::time::unix_now;

    #[tokio::test]
    async fn no_lease_for_a_process_that_read_the_row_before_another_stored_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url, SqliteSync::Normal).await.unwrap();
        let kind = "jsapi_ticket";
        // Both processes read the row: no value yet.
        let seen = store.credential(kind).await.unwrap();
        // One takes the lease, fetches and stores, giving the lease up.
        let until = unix_now() + 30;
        assert!(
            store
                .take_credential_lease(kind, "a", until, &seen)
                .await
                .unwrap()
        );
        store
            .save_credential(kind, "T1", unix_now() + 7200)
            .await
            .unwrap();
        // The other, with what it read before: no lease, so no second fetch; it reads the value again.
        assert!(
            !store
                .take_credential_lease(kind, "b", until, &seen)
                .await
                .unwrap()
        );
        let fresh = store.credential(kind).await.unwrap();
        assert_eq!(fresh.value.as_deref(), Some("T1"));
        // A lease asked with the row as it is now is granted (when that value is due, say).
        assert!(
            store
                .take_credential_lease(kind, "b", until, &fresh)
                .await
                .unwrap()
        );
        store.close().await;
    }
}
