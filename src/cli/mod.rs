//! The command line, one file per command group: [`serve`] (`serve`, the default; `check`; `demo`),
//! [`send`], [`admin`], [`menu`], [`qr`], [`template`], [`copy`], [`client`] (`client`, `oidc`).

pub mod admin;
pub mod client;
pub mod copy;
pub mod endpoint;
pub mod followers;
pub mod menu;
pub mod qr;
pub mod send;
pub mod serve;
pub mod template;
pub mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::StartError;
use crate::config::ConfigError;
use crate::demo::DemoError;
use crate::passwords::PasswordError;
use crate::store::{Store, StoreError};
use crate::upstream::ApiError;
use admin::AdminAction;
use client::{ClientAction, OidcAction};
use endpoint::EndpointAction;
use followers::FollowersAction;
use menu::MenuAction;
use qr::QrAction;
use send::SendArgs;
use template::TemplateAction;
use token::TokenAction;

#[derive(Debug, Parser)]
#[command(
    name = "wxportal",
    version,
    about = "A self-hosted server for WeChat Official Accounts"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Run on this machine with demo credentials and its own database: no WeChat account needed.
    /// Listens on loopback only (127.0.0.1), whatever WXPORTAL_BIND says.
    Demo {
        /// Listen on this address instead, such as 0.0.0.0:8080 to try the demo from a phone on the
        /// same network. Its Token, AES key and AppSecret are public: never on the Internet.
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Keep the demo's data in this database instead of ./wxportal-demo.db, such as a PostgreSQL
        /// database made for it (never WXPORTAL_DATABASE_URL: the demo must not touch production data).
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
    },
    /// Validate the configuration and print the values in use, secrets masked, and the database's
    /// backend, version and migrations.
    Check,
    /// Act as WeChat's server: send a message or the URL verification to a server and judge its answer.
    Send(Box<SendArgs>),
    /// Manage the operators who sign in at /admin (the database is WXPORTAL_DATABASE_URL's).
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Copy every table from one database to another (SQLite to PostgreSQL to move an installation,
    /// PostgreSQL to SQLite for a backup in one file). Both are migrated to this version first.
    Copy {
        /// The database to read, as WXPORTAL_DATABASE_URL names it (sqlite://… or postgres://…).
        #[arg(long, value_name = "URL")]
        from: String,
        /// The database to write; created if it is a SQLite file that does not exist.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Copy into a database that already holds followers, messages, operators or sessions: rows
        /// with the same key are overwritten, others kept. A rerun duplicates nothing.
        #[arg(long)]
        force: bool,
    },
    /// Manage the account's custom menu on WeChat (the access_token is shared with running servers
    /// through the database).
    Menu {
        #[command(subcommand)]
        action: MenuAction,
    },
    /// Template messages: list the account's templates, send one to a follower (JSON).
    Template {
        #[command(subcommand)]
        action: TemplateAction,
    },
    /// QR codes with a scene: create one on WeChat, list them with what they brought (JSON).
    Qr {
        #[command(subcommand)]
        action: QrAction,
    },
    /// The apps that sign followers in with WeChat through wxportal (OpenID Connect clients; JSON).
    Client {
        #[command(subcommand)]
        action: ClientAction,
    },
    /// The OpenID Connect provider's signing keys.
    Oidc {
        #[command(subcommand)]
        action: OidcAction,
    },
    /// The HTTP API's tokens, each limited to its scopes (JSON).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Import the account's followers and their tags from WeChat (JSON).
    Followers {
        #[command(subcommand)]
        action: FollowersAction,
    },
    /// Where events (messages, follows, sign-ins …) are posted, signed (JSON).
    Endpoint {
        #[command(subcommand)]
        action: EndpointAction,
    },
}

/// Why a command failed: printed on standard error, and the exit code is 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Demo(#[from] DemoError),
    #[error("{what} failed: {source}")]
    WeChat {
        what: &'static str,
        source: ApiError,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The command was understood and refused: the sentence says why.
    #[error("{0}")]
    Refused(String),
}

/// Runs the chosen subcommand and returns the process exit code.
/// The program: reads `.env`, the command line and the settings, runs the command on a runtime of its
/// own. Here rather than in `main.rs`, so that the runtime's generic code is compiled once, in this
/// crate (instantiated in the binary's crate, it was a minute of a release build).
pub fn main() -> ExitCode {
    // A missing .env is normal; settings may come from the environment alone.
    let _ = dotenvy::dotenv();
    let _log_guard = crate::telemetry::init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("the async runtime starts");
    runtime.block_on(run(cli))
}

pub async fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => report(serve::serve().await),
        Command::Demo {
            listen,
            database_url,
        } => report(serve::demo(listen, database_url).await),
        Command::Check => report(serve::check().await),
        Command::Send(args) => send::run(*args).await,
        Command::Menu { action } => report(menu::run(action).await),
        Command::Qr { action } => report(qr::run(action).await),
        Command::Client { action } => report(client::run(action).await),
        Command::Oidc { action } => report(client::run_oidc(action).await),
        Command::Token { action } => report(token::run(action).await),
        Command::Endpoint { action } => report(endpoint::run(action).await),
        Command::Followers { action } => report(followers::run(action).await),
        Command::Template { action } => report(template::run(action).await),
        Command::Admin { action } => report(admin::run(action).await),
        Command::Copy { from, to, force } => report(copy::run(&from, &to, force).await),
    }
}

/// The configuration, the database and the account's API, for a command that calls WeChat (the
/// access_token is shared with running servers through the database).
async fn account_context() -> Result<
    (
        crate::config::Config,
        Store,
        crate::upstream::account::Account,
    ),
    CliError,
> {
    let config = crate::config::Config::from_env()?;
    let store = Store::connect(&config.database_url, config.sqlite_synchronous).await?;
    let account = crate::app::account(
        &config,
        &store,
        crate::upstream::Upstream::new(crate::upstream::http_client(), &config.wechat_api_url),
    );
    Ok((config, store, account))
}

/// Prints what a command says (on standard output) or why it failed (on standard error).
fn report(result: Result<String, CliError>) -> ExitCode {
    match result {
        Ok(message) => {
            if !message.is_empty() {
                println!("{message}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
