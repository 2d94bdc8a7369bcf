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
    /// Run on this machine with demo credentials and its own database: no WeChat account needed.
    Demo,
    /// Validate the configuration and print the values in use, secrets masked.
    Check,
    /// Act as WeChat's server: send a message or the URL verification to a server and judge its answer.
    Send(Box<SendArgs>),
}

/// Runs the chosen subcommand and returns the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match Config::from_env() {
            Ok(config) => serve(config, None).await,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Demo => demo().await,
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

async fn serve(config: Config, banner: Option<String>) -> ExitCode {
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addr = %app.addr(), "wxportal listening; the webhook is /wechat");
    if let Some(banner) = banner {
        println!("{}", banner.replace("{addr}", &app.addr().to_string()));
    }
    match app.run(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
    }
}

/// Demo credentials: public on purpose, never used by `serve`.
const DEMO: [(&str, &str); 5] = [
    ("WXPORTAL_TOKEN", "wxportalDemo"),
    ("WXPORTAL_APPID", "wx0123456789abcdef"),
    (
        "WXPORTAL_ENCODING_AES_KEY",
        "wxportalDemoKey0123456789abcdefghijklmnopqr",
    ),
    ("WXPORTAL_MESSAGE_MODE", "compat"),
    ("WXPORTAL_DATABASE_URL", "sqlite://wxportal-demo.db"),
];

async fn demo() -> ExitCode {
    // The bind address and public URL may still come from the environment; the credentials may not.
    let config = Config::from_lookup(|name| {
        DEMO.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| std::env::var(name).ok())
    });
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let (token, appid, key) = (DEMO[0].1, DEMO[1].1, DEMO[2].1);
    let banner = format!(
        "\nwxportal demo: a WeChat Official Account server on this machine, no account needed.\n\
         \n  webhook      http://{{addr}}/wechat   (Token {token}, compatible mode)\
         \n  health       http://{{addr}}/healthz\
         \n  database     {}\n\
         \nPlay WeChat's server from another terminal:\
         \n  cargo run --release -- send --url http://{{addr}}/wechat --token {token} verify\
         \n  cargo run --release -- send --url http://{{addr}}/wechat --token {token} text \"你好\"\
         \n  cargo run --release -- send --url http://{{addr}}/wechat --token {token} --aes-key {key} --appid {appid} --mode safe subscribe\n",
        config.database_url
    );
    serve(config, Some(banner)).await
}
