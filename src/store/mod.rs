//! All SQL lives here, so another database backend can be added without touching handlers.
//!
//! Reads go through a pool; message writes go through one writer task that commits them in groups
//! (one transaction and one sync per batch), and each caller is answered only after its commit.

mod admins;
mod credentials;
mod jobs;
mod messages;
mod oauth;
mod rules;
mod sessions;
mod settings;
mod stats;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

use crate::config::SqliteSync;

pub use admins::{Admin, LoginAttempts};
pub use credentials::CredentialRow;
pub use jobs::{Job, JobKind, JobState, OutboxCounts};
pub use messages::{MessageQuery, MessageRecord, NewMessage, Recorded};
pub use oauth::{Claim, NewState, OAuthState, Outcome};
pub use rules::{MatchMode, Move, ReplyRule, RuleEdit, RuleKind};
pub use sessions::SessionRows;
pub use stats::Stats;
pub use users::{Authorized, FollowerInfo, Profile, Tokens, User, UserCursor, UserQuery, UserSort};

/// A database failure; the caller sees a 5xx and the operator a log line.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The message writer's commit failed (shared by the messages committed together).
    #[error("database error: {0}")]
    Writer(std::sync::Arc<sqlx::Error>),
    #[error("the database writer has stopped")]
    WriterGone,
}

/// Who holds a lease or a claim: this process, told apart from every other one and from its own
/// earlier runs.
pub(crate) fn owner_id() -> String {
    let id: [u8; 8] = rand::random();
    format!("{}:{}", std::process::id(), hex::encode(id))
}

/// The handle to the database that the whole application shares.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    writer: mpsc::Sender<messages::WriteJob>,
    /// One write on the pool at a time in this process: every write method takes its turn here
    /// ([`Store::write_turn`]) before it touches the pool. SQLite has one write lock; without the turn,
    /// concurrent writers met it taken and slept in SQLite's busy handler (naps of up to 100 ms, seen in
    /// the sign-in benchmark's p99) instead of queueing.
    write_gate: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Store {
    /// Opens (creating if missing) the database, applies migrations and starts the writer.
    pub async fn connect(url: &str, sync: SqliteSync) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL (the default): a committed message survives a power cut, not only a crash; group commit
            // pays for the sync.
            .synchronous(match sync {
                SqliteSync::Full => SqliteSynchronous::Full,
                SqliteSync::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        // The writer never checkpoints: in its commit path a checkpoint (which syncs the database file)
        // stalled every message queued behind it. A background task checkpoints instead.
        let writer = messages::spawn_writer(
            options
                .pragma("wal_autocheckpoint", "0")
                .statement_cache_capacity(512),
        )
        .await?;
        tokio::spawn(messages::checkpoint_regularly(
            pool.clone(),
            writer.downgrade(),
        ));
        let store = Self {
            pool,
            writer,
            write_gate: Default::default(),
        };
        tokio::spawn(store.clone().clean_up_regularly());
        Ok(store)
    }

    /// Where sessions live: in this database, so restarts and other instances keep them.
    pub(crate) fn session_store(&self) -> SessionRows {
        SessionRows::new(self)
    }

    /// This process's turn to write on the pool (see `write_gate`).
    pub(crate) async fn write_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write_gate.lock().await
    }

    /// Deletes expired sessions and old authorization states, hourly.
    async fn clean_up_regularly(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            if self.pool.is_closed() {
                return;
            }
            if let Err(e) = self.delete_expired_sessions().await {
                tracing::warn!(error = %e, "deleting expired sessions failed");
            }
            if let Err(e) = self.delete_old_oauth_states().await {
                tracing::warn!(error = %e, "deleting old authorization states failed");
            }
        }
    }

    /// Whether [`Store::close`] has run.
    pub(crate) fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Checks that the database answers: the readiness probe.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        if self.writer.is_closed() {
            return Err(StoreError::WriterGone);
        }
        Ok(())
    }

    /// Waits for queued writes to commit and closes the pool: for graceful shutdown.
    pub async fn close(&self) {
        // The writer drains its queue and exits once every sender is gone; closing the pool waits for it.
        let (tx, rx) = oneshot::channel();
        if self
            .writer
            .send(messages::WriteJob::Flush(tx))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
        self.pool.close().await;
    }
}
