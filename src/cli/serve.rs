//! The commands that run the server: `serve` (the default), `check` and `demo`.

use std::net::SocketAddr;

use super::CliError;
use crate::app::{App, shutdown_signal};
use crate::config::Config;
use crate::demo;
use crate::store::Store;

/// `wxportal serve`: the configuration from the environment, served until SIGINT or SIGTERM.
pub async fn serve() -> Result<String, CliError> {
    let app = App::build(Config::from_env()?).await?;
    run(app, None).await
}

/// `wxportal check`: the values in use, secrets masked, and what the database is: its backend, its
/// version and whether its migrations are current. Changes nothing.
pub async fn check() -> Result<String, CliError> {
    let config = Config::from_env()?;
    let db = Store::inspect(&config.database_url).await?;
    let migrations = match (db.pending_migrations, db.unknown_migrations) {
        (0, 0) => "current".to_owned(),
        (pending, 0) => format!("{pending} to apply at the next start"),
        (_, unknown) => {
            return Err(CliError::Refused(format!(
                "the database has {unknown} migration(s) this wxportal does not know: a newer version \
                 ran on it; run that version"
            )));
        }
    };
    Ok(format!(
        "{}database: {} {}, migrations {migrations}\nconfiguration OK",
        config.describe(),
        db.backend.as_str(),
        db.version,
    ))
}

/// `wxportal demo`: everything on this machine, WeChat played by the simulator.
pub async fn demo(
    listen: Option<SocketAddr>,
    database_url: Option<String>,
) -> Result<String, CliError> {
    let overrides: Vec<(&str, String)> = listen
        .map(|addr| ("WXPORTAL_BIND", addr.to_string()))
        .into_iter()
        .chain(database_url.map(|url| ("WXPORTAL_DATABASE_URL", url)))
        .collect();
    if let Some(addr) = listen.filter(|a| !a.ip().is_loopback()) {
        eprintln!(
            "\nWARNING: the demo listens on {addr}, reachable from other machines. Its Token, AES key, \
             AppSecret and admin password are public or printed here: use it on a network you trust, \
             never on the Internet.\n"
        );
    }
    let (app, banner) = demo::build(&overrides).await?;
    run(app, Some(banner)).await
}

async fn run(app: App, banner: Option<String>) -> Result<String, CliError> {
    tracing::info!(addr = %app.addr(), "wxportal listening; the webhook is /wechat");
    if let Some(banner) = banner {
        println!("{banner}");
    }
    app.run(shutdown_signal())
        .await
        .map_err(|source| CliError::Io {
            what: "serving".into(),
            source,
        })?;
    Ok(String::new())
}
