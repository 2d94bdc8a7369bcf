//! The commands that run the server: `serve` (the default), `check` and `demo`.

use std::net::SocketAddr;

use super::CliError;
use crate::app::{App, shutdown_signal};
use crate::config::Config;
use crate::demo;

/// `wxportal serve`: the configuration from the environment, served until SIGINT or SIGTERM.
pub async fn serve() -> Result<String, CliError> {
    let app = App::build(Config::from_env()?).await?;
    run(app, None).await
}

/// `wxportal check`: the values in use, secrets masked.
pub fn check() -> Result<String, CliError> {
    let config = Config::from_env()?;
    Ok(format!("{}configuration OK", config.describe()))
}

/// `wxportal demo`: everything on this machine, WeChat played by the simulator.
pub async fn demo(listen: Option<SocketAddr>) -> Result<String, CliError> {
    let overrides: Vec<(&str, String)> = listen
        .map(|addr| ("WXPORTAL_BIND", addr.to_string()))
        .into_iter()
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
