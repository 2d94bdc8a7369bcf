//! Each test's database: a SQLite file in a temporary directory, or a PostgreSQL database of its own,
//! created for the test and dropped after it. Which of the two is this test binary's backend
//! ([`crate::BACKEND`]): `tests/api` runs the suite on SQLite, `tests/postgres` on PostgreSQL.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sqlx::{AssertSqlSafe, Connection, PgConnection, SqliteConnection};

/// The databases the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the PostgreSQL half connects to create its databases: a role allowed to create databases.
pub fn postgres_admin_url() -> String {
    std::env::var("WXPORTAL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://wxportal:wxportal@127.0.0.1:5432/postgres".to_owned())
}

/// A test's own database, removed when dropped.
pub struct TestDb {
    /// Files the test keeps beside the database (the SQLite file itself, server logs).
    pub dir: tempfile::TempDir,
    /// `WXPORTAL_DATABASE_URL` for it.
    pub url: String,
    /// The PostgreSQL database's name, dropped with it.
    postgres: Option<String>,
}

impl TestDb {
    /// A fresh, empty database on this binary's backend.
    ///
    /// Without a reachable PostgreSQL the PostgreSQL half is skipped: the whole test binary says so and
    /// exits successfully, unless `WXPORTAL_REQUIRE_POSTGRES` is set, which makes that a failure.
    pub async fn fresh() -> Self {
        let dir = tempfile::tempdir().unwrap();
        match crate::BACKEND {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.path().join("wxportal.db").display()),
                dir,
                postgres: None,
            },
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let mut admin = match PgConnection::connect(&admin_url).await {
                    Ok(conn) => conn,
                    Err(e) => skip_postgres(&admin_url, &e),
                };
                static CLEANED: AtomicBool = AtomicBool::new(false);
                if !CLEANED.swap(true, Ordering::SeqCst) {
                    drop_leftovers(&mut admin).await;
                }
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                let name = format!(
                    "wxt_{}_{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::SeqCst)
                );
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin_url).unwrap();
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    dir,
                    postgres: Some(name),
                }
            }
        }
    }

    /// Adds a slow keyword rule (`慢` answered `收到` through the outbox) straight into the database, as
    /// an edit from elsewhere would: running servers pick it up within their watch interval.
    pub async fn add_slow_rule(&self) {
        self.connect()
            .await
            .execute(
                "INSERT INTO reply_rules (kind, position, match_mode, keyword, reply, slow, updated_at)
                 VALUES ('keyword', 1, 'contains', '慢', '{\"type\":\"text\",\"content\":\"收到\"}', TRUE, 0);
                 UPDATE settings SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT)
                 WHERE name = 'reply_rules_revision'",
            )
            .await;
    }

    /// A connection of the test's own, to seed or inspect the database directly.
    pub async fn connect(&self) -> RawDb {
        match crate::BACKEND {
            Backend::Sqlite => RawDb::Sqlite(SqliteConnection::connect(&self.url).await.unwrap()),
            Backend::Postgres => RawDb::Postgres(PgConnection::connect(&self.url).await.unwrap()),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which must keep running meanwhile (a connection of the
        // test's still in its handshake would hold the drop up): a thread of its own drops the database,
        // unwaited. Should the process end first, the next run drops what is left.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&postgres_admin_url()).await {
                    let _ = sqlx::query(AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                }
            });
        });
    }
}

fn skip_postgres(url: &str, error: &sqlx::Error) -> ! {
    let shown = wxportal::store::redact_url(url);
    assert!(
        std::env::var_os("WXPORTAL_REQUIRE_POSTGRES").is_none(),
        "WXPORTAL_REQUIRE_POSTGRES is set but PostgreSQL is not reachable at {shown}: {error}"
    );
    // Straight to the terminal: the test harness would swallow a print from a test thread.
    let _ = writeln!(
        std::io::stderr().lock(),
        "\nSKIPPED: the PostgreSQL half of the tests (no PostgreSQL at {shown}: {error}).\n\
         Set WXPORTAL_TEST_POSTGRES_URL to a role that may create databases, or run .ci/run, which \
         sets one up; WXPORTAL_REQUIRE_POSTGRES=1 turns this skip into a failure.\n"
    );
    std::process::exit(0)
}

/// Drops the databases of earlier runs whose process is gone (a run stopped before its drops).
async fn drop_leftovers(admin: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'wxt\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name.split('_').nth(1).unwrap_or_default();
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut *admin)
        .await;
    }
}

/// A direct connection to a test's database, on either backend.
pub enum RawDb {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl RawDb {
    /// Runs statements (several, separated by `;`) with no bound values.
    pub async fn execute(&mut self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Self::Sqlite(conn) => sqlx::raw_sql(sql).execute(conn).await.map(drop),
            Self::Postgres(conn) => sqlx::raw_sql(sql).execute(conn).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The first column of the first row, as text.
    pub async fn text(&mut self, sql: &str) -> String {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Self::Sqlite(conn) => sqlx::query_scalar(sql).fetch_one(conn).await,
            Self::Postgres(conn) => sqlx::query_scalar(sql).fetch_one(conn).await,
        }
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The first column of the first row, as a number.
    pub async fn number(&mut self, sql: &str) -> i64 {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Self::Sqlite(conn) => sqlx::query_scalar(sql).fetch_one(conn).await,
            Self::Postgres(conn) => sqlx::query_scalar(sql).fetch_one(conn).await,
        }
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every table's name, this application's and the migrations' bookkeeping.
    pub async fn tables(&mut self) -> Vec<String> {
        let sql = match self {
            Self::Sqlite(_) => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
            Self::Postgres(_) => {
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
            }
        };
        match self {
            Self::Sqlite(conn) => sqlx::query_scalar(sql).fetch_all(conn).await,
            Self::Postgres(conn) => sqlx::query_scalar(sql).fetch_all(conn).await,
        }
        .unwrap()
    }
}

/// `s` as an SQL string literal.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
