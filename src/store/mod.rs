//! All SQL lives here, so handlers never know which database they run on.
//!
//! Two backends: SQLite (the default: one file, nothing to install) and PostgreSQL (several instances on
//! one database). Each method's SQL is written once and typed for both backends by [`on_pool!`]; where
//! the two dialects differ, the statement for each sits side by side in [`Dialect`] or in the method.
//!
//! On both, messages (and what became of background attempts) go through one writer per process that
//! commits them in groups, one transaction and one sync per batch, on PostgreSQL two batches at a time
//! ([`writer`]); each caller is answered
//! only after its commit. On SQLite every other write takes its turn at [`Store::write_turn`]; on
//! PostgreSQL other writes are transactions of their own.

mod admins;
mod api_tokens;
mod campaigns;
mod copy;
mod credentials;
mod endpoints;
mod idempotency;
mod jobs;
mod media;
mod messages;
mod oauth;
mod oidc;
mod qr;
mod retention;
mod rules;
mod sessions;
mod settings;
mod stats;
mod sync;
mod users;
mod writer;

use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::SqliteSync;

pub use admins::{Admin, LoginAttempts};
pub use api_tokens::ApiToken;
pub use campaigns::{Audience, Campaign, CampaignState, NewCampaign, Progress, Template};
pub use copy::{Cell, TableCount, copy};
pub use credentials::CredentialRow;
pub(crate) use endpoints::QueueEvent;
pub use endpoints::{
    Delivery, DeliveryAttempt, DeliveryState, Endpoint, EndpointSummary, EventType, NewEvent,
};
pub(crate) use idempotency::RecordOnce;
pub use idempotency::{Made, Once};
pub(crate) use jobs::Attempt;
pub use jobs::{Job, JobKind, JobState, OutboxCounts};
pub use media::Media;
pub use messages::{MessageQuery, MessageRecord, NewMessage, Recorded};
pub use oauth::{Claim, NewState, OAuthState, Outcome};
pub use oidc::{
    Client, Code, Grant, KeyRow, NewToken, Redeemed, Rotated, Subject, TokenGrant, TokenKind,
};
pub use qr::{NewQrCode, QrCode, Scan};
pub use retention::{Pruned, Retention};
pub use rules::{MatchMode, Move, ReplyRule, RuleEdit, RuleKind};
pub use sessions::SessionRows;
pub use stats::Stats;
pub use sync::{FollowerTag, STALE_SECS, SyncRun, SyncState, SyncedFollower};
pub use users::{Authorized, FollowerInfo, Profile, Tokens, User, UserCursor, UserQuery, UserSort};

/// Runs `$body` with `$pool` bound to this store's pool, once typed for each backend: the same SQL text
/// serves both. The second form also names, as `$sql`, the calling module's `sqlite` or `postgres`
/// module (made by [`per_backend!`]) for helpers that take a connection.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite(db) => {
                let $pool = &db.pool;
                $body
            }
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
    ($store:expr, |$pool:ident, $sql:ident| $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite(db) => {
                use sqlite as $sql;
                let $pool = &db.pool;
                $body
            }
            $crate::store::Db::Postgres($pool) => {
                use postgres as $sql;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// Defines the items once per backend, as modules `sqlite` and `postgres` in which `Db` is that
/// backend's [`sqlx::Database`]: helpers that take a connection are written once and typed twice.
macro_rules! per_backend {
    ($($item:item)*) => {
        pub(super) mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            #[allow(dead_code)]
            pub(super) type Db = sqlx::Sqlite;
            $($item)*
        }
        pub(super) mod postgres {
            #[allow(unused_imports)]
            use super::*;
            #[allow(dead_code)]
            pub(super) type Db = sqlx::Postgres;
            $($item)*
        }
    };
}
pub(crate) use per_backend;

/// Makes an enum a column of text on both backends: `as_str` (each variant's text), `from_text`, and
/// sqlx's `Type`, `Encode` and `Decode` through `str`. (sqlx's derive would do the same, at the cost of
/// building both database drivers, with SQLite's C source, into its macros crate.)
macro_rules! stored_as_text {
    ($ty:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The text stored for it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The variant whose text this is.
            pub fn from_text(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $ty
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $ty
        where
            &'q str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'q str as sqlx::Encode<'q, DB>>::encode(self.as_str(), buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $ty
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                Self::from_text(text).ok_or_else(|| {
                    format!("{text:?} is not a {}", stringify!($ty)).into()
                })
            }
        }
    };
}
pub(crate) use stored_as_text;

/// The statements that differ between the two backends.
pub(crate) trait Dialect: sqlx::Database + Sized {
    /// How a multi-row insert that skips the rows a unique index refuses begins (before the table's
    /// name) and ends (after its values). On SQLite, `INSERT OR IGNORE`: with `ON CONFLICT DO NOTHING`,
    /// SQLite kept a statement journal for the insert (a copy of every page it touched, in case a NOT NULL
    /// column stopped it halfway), a tenth of the webhook's CPU per message. OR IGNORE would also skip a
    /// row with a NULL in a NOT NULL column: the callers bind no such value.
    const INSERT_SKIPPING_CONFLICTS: (&str, &str);

    /// Narrows a follower query to nicknames containing `search` (letter case ignored), through the
    /// backend's trigram index where it can.
    fn push_nickname_contains(sql: &mut sqlx::QueryBuilder<Self>, search: &str);
}

impl Dialect for sqlx::Sqlite {
    const INSERT_SKIPPING_CONFLICTS: (&str, &str) = ("INSERT OR IGNORE INTO", "");

    fn push_nickname_contains(sql: &mut sqlx::QueryBuilder<Self>, search: &str) {
        // Three characters or more: the trigram index (which cannot take LIKE's escapes); one or two: the
        // index of each nickname's characters and pairs (migrations/sqlite/0008). Both ignore ASCII case.
        let length = search.chars().count();
        if length >= 3 && !search.contains(['%', '_', '\\']) {
            sql.push(" AND rowid IN (SELECT rowid FROM users_nickname WHERE nickname LIKE ")
                .push_bind(format!("%{search}%"))
                .push(")");
        } else if length < 3 {
            sql.push(" AND rowid IN (SELECT user_rowid FROM user_grams WHERE gram = lower(")
                .push_bind(search.to_owned())
                .push("))");
        } else {
            // A long search with a wildcard character in it walks the follower index.
            sql.push(" AND nickname LIKE ")
                .push_bind(format!("%{}%", users::escape_like(search)))
                .push(" ESCAPE '\\'");
        }
    }
}

impl Dialect for sqlx::Postgres {
    const INSERT_SKIPPING_CONFLICTS: (&str, &str) = ("INSERT INTO", " ON CONFLICT DO NOTHING");

    fn push_nickname_contains(sql: &mut sqlx::QueryBuilder<Self>, search: &str) {
        if search.chars().count() >= 3 {
            // pg_trgm's index serves ILIKE (backslash is its escape character by default).
            sql.push(" AND nickname ILIKE ")
                .push_bind(format!("%{}%", users::escape_like(search)));
        } else {
            // Shorter than a trigram (pg_trgm would read its whole index): the index of each nickname's
            // characters and pairs (migrations/postgres/0003) finds it.
            sql.push(" AND nickname_grams(nickname) @> ARRAY[lower(")
                .push_bind(search.to_owned())
                .push(")]");
        }
    }
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a `WXPORTAL_DATABASE_URL` names.
    pub fn of_url(url: &str) -> Self {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// A database URL fit to print: any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

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
    /// An idempotency key was recorded by another request while this one ran (nothing was written).
    #[error("the idempotency key was used by another request at the same time")]
    KeyTaken,
    /// `PostgreSQL 12` and older lack what the schema uses.
    #[error("{0}")]
    Unsupported(String),
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
    db: Db,
    writer: writer::Writer,
}

#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

#[derive(Clone, Debug)]
pub(crate) struct SqliteDb {
    pool: SqlitePool,
    /// One write at a time in this process: every write method takes its turn here
    /// ([`Store::write_turn`]) before it touches the pool, and the writer before each commit. SQLite has one write lock; without the turn,
    /// concurrent writers met it taken and slept in SQLite's busy handler (naps of up to 100 ms, seen in
    /// the sign-in benchmark's p99) instead of queueing.
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

/// The pool's connections, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

/// What `wxportal check` reports about the database.
#[derive(Debug, Clone)]
pub struct DatabaseReport {
    pub backend: Backend,
    pub version: String,
    /// Migrations this binary knows and the database has not applied (0 = current).
    pub pending_migrations: usize,
    /// Migrations applied that this binary does not know (a newer binary ran here).
    pub unknown_migrations: usize,
}

/// The files of `migrations/`, embedded (listed by build.rs).
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

static SQLITE_MIGRATIONS: LazyLock<Migrator> = LazyLock::new(|| migrator(embedded::SQLITE));
static POSTGRES_MIGRATIONS: LazyLock<Migrator> = LazyLock::new(|| migrator(embedded::POSTGRES));

/// A backend's migrations as sqlx's `migrate!` would make them from the same files (the same
/// descriptions and checksums, so databases migrated by earlier versions stay current).
fn migrator(files: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType};
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(version, description, sql)| {
                let no_tx = sql.starts_with("-- no-transaction");
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    no_tx,
                )
            })
            .collect(),
    )
}

/// PostgreSQL's oldest supported major version.
const POSTGRES_MIN_VERSION: i32 = 130000;

impl Store {
    /// Opens the database the URL names, applies migrations and (on SQLite) starts the writer.
    pub async fn connect(url: &str, sync: SqliteSync) -> Result<Self, StoreError> {
        let store = match Backend::of_url(url) {
            Backend::Sqlite => Self::connect_sqlite(url, sync).await?,
            Backend::Postgres => Self::connect_postgres(url).await?,
        };
        tokio::spawn(store.clone().clean_up_regularly());
        Ok(store)
    }

    async fn connect_sqlite(url: &str, sync: SqliteSync) -> Result<Self, StoreError> {
        let options = sqlite_options(url, sync)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        SQLITE_MIGRATIONS.run(&pool).await?;
        // The writer never checkpoints: in its commit path a checkpoint (which syncs the database file)
        // stalled every message queued behind it. A background task checkpoints instead.
        let write_gate = Arc::new(tokio::sync::Mutex::new(()));
        // FULL promises a sync of the log after every commit; the writer's own thread does it for the
        // messages (a database in memory has no log to sync).
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let log = (sync == SqliteSync::Full && !in_memory).then(|| {
            let mut path = options.get_filename().as_os_str().to_owned();
            path.push("-wal");
            std::path::PathBuf::from(path)
        });
        let writer = writer::Writer::spawn(writer::Target::Sqlite {
            log,
            options: options
                .pragma("wal_autocheckpoint", "0")
                .statement_cache_capacity(512),
            gate: Arc::clone(&write_gate),
        })
        .await?;
        tokio::spawn(writer::checkpoint_regularly(
            pool.clone(),
            writer.downgrade(),
        ));
        Ok(Self {
            db: Db::Sqlite(SqliteDb { pool, write_gate }),
            writer,
        })
    }

    async fn connect_postgres(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
            .fetch_one(&pool)
            .await?;
        if version < POSTGRES_MIN_VERSION {
            return Err(StoreError::Unsupported(format!(
                "PostgreSQL {} is too old: wxportal needs 13 or newer",
                version / 10000
            )));
        }
        // Instances starting together take turns: sqlx holds an advisory lock while it migrates.
        POSTGRES_MIGRATIONS.run(&pool).await?;
        // The writer's statements differ by their batch's size: a cache as large as SQLite's writer's
        // keeps each size prepared (sqlx's default of 100 had them parsed and planned again). Two
        // alternating runs of bench/postgres.sh: 21,322 and 21,040 messages/s before, 22,089 and 22,343
        // after, the database's CPU per message 30-31 µs before, 27 µs after; each writer backend holds
        // about 5 MB more.
        let writer = writer::Writer::spawn(writer::Target::Postgres(
            options.statement_cache_capacity(512),
        ))
        .await?;
        Ok(Self {
            db: Db::Postgres(pool),
            writer,
        })
    }

    /// This process's database connections: in use, idle, and the most the pool opens.
    pub fn pool_use(&self) -> PoolUse {
        on_pool!(self, |pool| {
            let idle = pool.num_idle() as u32;
            PoolUse {
                in_use: pool.size().saturating_sub(idle),
                idle,
                max: pool.options().get_max_connections(),
            }
        })
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// The backend, its version and whether the migrations are current, without changing anything:
    /// for `wxportal check`.
    pub async fn inspect(url: &str) -> Result<DatabaseReport, StoreError> {
        use sqlx::Connection;
        use sqlx::migrate::Migrate;
        let backend = Backend::of_url(url);
        let (version, applied, migrator) = match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?.read_only(true);
                let exists = options.get_filename().exists();
                // A file not created yet is empty: every migration is pending.
                let target = if exists {
                    options
                } else {
                    SqliteConnectOptions::from_str("sqlite::memory:")?
                };
                let mut conn = sqlx::SqliteConnection::connect_with(&target).await?;
                let version: String = sqlx::query_scalar("SELECT sqlite_version()")
                    .fetch_one(&mut conn)
                    .await?;
                let applied = applied_versions(&mut conn, &SQLITE_MIGRATIONS).await;
                (version, applied, &SQLITE_MIGRATIONS)
            }
            Backend::Postgres => {
                let mut conn =
                    sqlx::PgConnection::connect_with(&PgConnectOptions::from_str(url)?).await?;
                let version: String = sqlx::query_scalar("SHOW server_version")
                    .fetch_one(&mut conn)
                    .await?;
                let applied = applied_versions(&mut conn, &POSTGRES_MIGRATIONS).await;
                (version, applied, &POSTGRES_MIGRATIONS)
            }
        };
        let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
        return Ok(DatabaseReport {
            backend,
            version,
            pending_migrations: known.iter().filter(|v| !applied.contains(v)).count(),
            unknown_migrations: applied.iter().filter(|v| !known.contains(v)).count(),
        });

        /// The versions applied; none when the database was never migrated.
        async fn applied_versions(conn: &mut impl Migrate, migrator: &Migrator) -> Vec<i64> {
            match conn.list_applied_migrations(&migrator.table_name).await {
                Ok(applied) => applied.into_iter().map(|m| m.version).collect(),
                Err(_) => Vec::new(),
            }
        }
    }

    /// Where sessions live: in this database, so restarts and other instances keep them.
    pub(crate) fn session_store(&self) -> SessionRows {
        SessionRows::new(self)
    }

    /// This process's turn to write on the pool (see [`SqliteDb::write_gate`]); PostgreSQL needs none.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.db {
            Db::Sqlite(sqlite) => Some(sqlite.write_gate.lock().await),
            Db::Postgres(_) => None,
        }
    }

    /// Deletes expired sessions, old authorization states and spent OpenID Connect codes and tokens,
    /// hourly.
    async fn clean_up_regularly(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            if self.is_closed() {
                return;
            }
            // A failure because a command closed the store meanwhile (it runs this first pass at once)
            // is not worth a warning.
            if let Err(e) = self.delete_expired_sessions().await
                && !self.is_closed()
            {
                tracing::warn!(error = %e, "deleting expired sessions failed");
            }
            if let Err(e) = self.delete_old_oauth_states().await
                && !self.is_closed()
            {
                tracing::warn!(error = %e, "deleting old authorization states failed");
            }
            if let Err(e) = self.delete_spent_oidc().await
                && !self.is_closed()
            {
                tracing::warn!(error = %e, "deleting spent sign-in codes and tokens failed");
            }
            if let Err(e) = self.delete_old_idempotency_keys().await
                && !self.is_closed()
            {
                tracing::warn!(error = %e, "deleting old idempotency keys failed");
            }
        }
    }

    /// Whether [`Store::close`] has run.
    pub(crate) fn is_closed(&self) -> bool {
        on_pool!(self, |pool| pool.is_closed())
    }

    /// Checks that the database answers: the readiness probe.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await?
            .rows_affected());
        if self.writer.is_closed() {
            return Err(StoreError::WriterGone);
        }
        Ok(())
    }

    /// Waits for queued writes to commit and closes the pool: for graceful shutdown. The writer exits
    /// once every handle to it is gone.
    pub async fn close(&self) {
        self.writer.flush().await;
        on_pool!(self, |pool| pool.close().await);
    }
}

fn sqlite_options(url: &str, sync: SqliteSync) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL (the default): a committed message survives a power cut, not only a crash; group commit
        // pays for the sync.
        .synchronous(match sync {
            SqliteSync::Full => SqliteSynchronous::Full,
            SqliteSync::Normal => SqliteSynchronous::Normal,
        })
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true))
}
