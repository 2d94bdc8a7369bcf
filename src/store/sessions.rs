//! Sessions in the database (the `sessions` table), for tower-sessions' session layer. Their writes go
//! through the store's writer: a sign-in deletes the session it had and creates another, and as commits of
//! their own these queued every sign-in behind the others' syncs.

use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use super::writer::Op;
use super::{Store, StoreError, on_pool, per_backend};
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

    /// Commits the write; whether it changed a row.
    async fn commit(&self, write: SessionWrite) -> session_store::Result<bool> {
        let changed = self
            .store
            .writer
            .op(Op::Session(write))
            .await
            .map_err(|e| session_store::Error::Backend(e.to_string()))?;
        Ok(changed == 1)
    }
}

/// A session row's write, as the writer commits it.
pub(super) enum SessionWrite {
    /// A new row; nothing when the id is taken.
    Create(Row),
    /// The row, new or replacing the one with its id.
    Save(Row),
    Delete(String),
}

pub(super) struct Row {
    id: String,
    data: String,
    expires_at: i64,
}

impl Row {
    fn of(record: &Record) -> session_store::Result<Self> {
        Ok(Self {
            id: record.id.to_string(),
            data: encode(record)?,
            expires_at: record.expiry_date.unix_timestamp(),
        })
    }
}

per_backend! {
    /// The write; the rows it changed.
    pub(in crate::store) async fn write(
        tx: &mut <Db as sqlx::Database>::Connection,
        write: &SessionWrite,
    ) -> Result<u64, sqlx::Error> {
        let (sql, row) = match write {
            SessionWrite::Create(row) => (
                "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                row,
            ),
            SessionWrite::Save(row) => (
                "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
                row,
            ),
            SessionWrite::Delete(id) => {
                return Ok(sqlx::query("DELETE FROM sessions WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected());
            }
        };
        Ok(sqlx::query(sql)
            .bind(&row.id)
            .bind(&row.data)
            .bind(row.expires_at)
            .execute(&mut *tx)
            .await?
            .rows_affected())
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
        // A taken id (a 128-bit random collision) draws another.
        while !self.commit(SessionWrite::Create(Row::of(record)?)).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.commit(SessionWrite::Save(Row::of(record)?)).await?;
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
        self.commit(SessionWrite::Delete(id.to_string())).await?;
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
