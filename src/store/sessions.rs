//! Sessions in the database (the `sessions` table), for tower-sessions' session layer. Their writes take
//! the store's write gate like every other write on the pool.

use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use super::{Store, StoreError, on_pool};
use crate::time::unix_now;

/// The session rows, as the session layer reads and writes them.
#[derive(Debug, Clone)]
pub struct SessionRows {
    store: Store,
}

impl SessionRows {
    pub(super) fn new(store: &Store) -> Self {
        Self {
            store: store.clone(),
        }
    }

    /// Writes the row: `sql` inserts `(id, data, expires_at)` and says what a taken id does. Whether a
    /// row was written.
    async fn write(&self, sql: &'static str, record: &Record) -> session_store::Result<bool> {
        let (id, data, expires_at) = (
            record.id.to_string(),
            encode(record)?,
            record.expiry_date.unix_timestamp(),
        );
        let done = on_pool!(self.store, |pool| sqlx::query(sql)
            .bind(id)
            .bind(data)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map_err(backend)?;
        Ok(done == 1)
    }
}

fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))
}

fn backend(e: sqlx::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait::async_trait]
impl SessionStore for SessionRows {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let _turn = self.store.write_turn().await;
        // A taken id (a 128-bit random collision) draws another.
        while !self
            .write(
                "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                record,
            )
            .await?
        {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let _turn = self.store.write_turn().await;
        self.write(
            "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
            record,
        )
        .await?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row: Option<(String, i64)> = on_pool!(self.store, |pool| sqlx::query_as(
            "SELECT data, expires_at FROM sessions WHERE id = $1 AND expires_at > $2"
        )
        .bind(id.to_string())
        .bind(unix_now())
        .fetch_optional(pool)
        .await)
        .map_err(backend)?;
        let Some((data, expires_at)) = row else {
            return Ok(None);
        };
        Ok(Some(Record {
            id: *id,
            data: serde_json::from_str(&data)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?,
            expiry_date: OffsetDateTime::from_unix_timestamp(expires_at)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let _turn = self.store.write_turn().await;
        on_pool!(self.store, |pool| sqlx::query(
            "DELETE FROM sessions WHERE id = $1"
        )
        .bind(id.to_string())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .map_err(backend)?;
        Ok(())
    }
}

impl Store {
    /// Deletes the sessions that have expired; how many.
    pub(crate) async fn delete_expired_sessions(&self) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        Ok(on_pool!(self, |pool| sqlx::query(
            "DELETE FROM sessions WHERE expires_at <= $1"
        )
        .bind(unix_now())
        .execute(pool)
        .await?
        .rows_affected()))
    }
}
