//! The command line: `serve` (the default), `check`, `send`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{App, shutdown_signal};
use crate::config::Config;
use crate::send::{self, SendArgs};
use crate::simulator;

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
            Ok(config) => serve(config).await,
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

async fn serve(config: Config) -> ExitCode {
    match App::build(config).await {
        Ok(app) => run_app(app, None).await,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            ExitCode::FAILURE
        }
    }
}

async fn run_app(app: App, banner: Option<String>) -> ExitCode {
    tracing::info!(addr = %app.addr(), "wxportal listening; the webhook is /wechat");
    if let Some(banner) = banner {
        println!("{banner}");
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
const DEMO: [(&str, &str); 6] = [
    ("WXPORTAL_TOKEN", "wxportalDemo"),
    ("WXPORTAL_APPID", "wx0123456789abcdef"),
    (
        "WXPORTAL_ENCODING_AES_KEY",
        "wxportalDemoKey0123456789abcdefghijklmnopqr",
    ),
    ("WXPORTAL_MESSAGE_MODE", "compat"),
    ("WXPORTAL_DATABASE_URL", "sqlite://wxportal-demo.db"),
    ("WXPORTAL_APPSECRET", "d3e0d3e0d3e0d3e0d3e0d3e0d3e0d3e0"),
];

/// The demo's configuration: `overrides` first, then the demo credentials, WeChat played by the built-in
/// simulator at `addr`, and from the environment only the bind address, public URL and account name (never
/// a database URL: a `.env` written for `serve` must not point the demo at production data).
fn demo_config(
    overrides: &[(&str, String)],
    addr: Option<std::net::SocketAddr>,
) -> Result<Config, crate::config::ConfigError> {
    let from_env = |name: &str| {
        overrides
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    };
    let public_url =
        from_env("WXPORTAL_PUBLIC_URL").or_else(|| addr.map(|a| format!("http://{a}")));
    Config::from_lookup(|name| {
        if let Some((_, v)) = overrides.iter().find(|(k, _)| *k == name) {
            return Some(v.clone());
        }
        if let Some((_, v)) = DEMO.iter().find(|(k, _)| *k == name) {
            return Some((*v).to_owned());
        }
        match (name, addr) {
            ("WXPORTAL_PUBLIC_URL", _) => public_url.clone(),
            ("WXPORTAL_WECHAT_OPEN_URL", Some(_)) => public_url
                .as_ref()
                .map(|p| format!("{}{}", p.trim_end_matches('/'), simulator::OPEN_PATH)),
            ("WXPORTAL_WECHAT_API_URL", Some(a)) => {
                Some(format!("http://{a}{}", simulator::API_PATH))
            }
            ("WXPORTAL_BIND", _) => from_env(name),
            ("WXPORTAL_ACCOUNT_NAME", _) => {
                from_env(name).or_else(|| Some("wxportal 演示号".to_owned()))
            }
            _ => None,
        }
    })
}

/// Builds the demo (settings in `overrides` win, for tests); returns the app and the banner to print.
pub async fn build_demo(overrides: &[(&str, String)]) -> Result<(App, String), String> {
    let bind = demo_config(overrides, None).map_err(|e| e.to_string())?;
    let listener = App::bind(&bind).await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let config = demo_config(overrides, Some(addr)).map_err(|e| e.to_string())?;
    let (token, appid, key) = (DEMO[0].1, DEMO[1].1, DEMO[2].1);
    let portal = config.public_url.clone();
    let banner = format!(
        "\nwxportal demo: the whole product on this machine, WeChat played by a built-in simulator.\n\
         \nOpen in a browser (a phone-sized window looks best):\
         \n  portal         {portal}/            guide page → consent (simulated) → your profile\
         \n  follower chat  {portal}/_sim/chat   message the account as a follower, see its replies\
         \n\
         \n  webhook        {portal}/wechat      (Token {token}, compatible mode)\
         \n  database       {}\n\
         \nOr play WeChat's server from another terminal:\
         \n  cargo run --release -- send --url {portal}/wechat --token {token} text \"你好\"\
         \n  cargo run --release -- send --url {portal}/wechat --token {token} --aes-key {key} --appid {appid} --mode safe subscribe\n",
        config.database_url
    );
    let app = App::build_on(listener, config)
        .await
        .map_err(|e| e.to_string())?
        .with_simulator();
    Ok((app, banner))
}

async fn demo() -> ExitCode {
    match build_demo(&[]).await {
        Ok((app, banner)) => run_app(app, Some(banner)).await,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
