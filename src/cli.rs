//! The command line: `serve` (the default), `check`, `send`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{App, shutdown_signal};
use crate::config::Config;
use crate::send::{self, SendArgs};

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
    /// Validate the configuration and print the values in use, secrets masked.
    Check,
    /// Act as WeChat's server: send a message or the URL verification to a server and judge its answer.
    Send(Box<SendArgs>),
}

/// Runs the chosen subcommand and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve().await,
        Command::Check => match Config::from_env() {
            Ok(config) => {
                print!("{}", config.describe());
                println!("configuration OK");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Send(args) => send::run(*args).await,
    }
}

async fn serve() -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addr = %app.addr(), "wxportal listening; the webhook is /wechat");
    match app.run(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
    }
}
