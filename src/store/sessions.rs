//! Sessions in the database: tower-sessions' SQLite store, with its writes taken through the store's
//! write gate like every other write on the pool.

use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions_sqlx_store::SqliteStore;

use super::Store;

/// The session rows, as the session layer reads and writes them.
#[derive(Debug, Clone)]
pub struct SessionRows {
    rows: SqliteStore,
    store: Store,
}

impl SessionRows {
    pub(super) fn new(store: &Store) -> Self {
        Self {
            rows: SqliteStore::new(store.pool.clone()),
            store: store.clone(),
        }
    }
}

#[async_trait::async_trait]
impl SessionStore for SessionRows {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let _turn = self.store.write_turn().await;
        self.rows.create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let _turn = self.store.write_turn().await;
        self.rows.save(record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.rows.load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let _turn = self.store.write_turn().await;
        self.rows.delete(id).await
    }
}
