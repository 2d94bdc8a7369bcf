//! The command line: `serve` (the default), `demo`, `check`, `send`, `admin`, `menu`.

pub mod send;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{self, App, shutdown_signal};
use crate::config::{Config, SqliteSync};
use crate::demo;
use crate::store::Store;
use crate::time::beijing_time;
use crate::upstream::menu::Menu;
use crate::upstream::{Upstream, http_client};
use crate::web::admin::{auth, hash_password};
use send::SendArgs;

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
    },
    /// Validate the configuration and print the values in use, secrets masked.
    Check,
    /// Act as WeChat's server: send a message or the URL verification to a server and judge its answer.
    Send(Box<SendArgs>),
    /// Manage the operators who sign in at /admin (the database is WXPORTAL_DATABASE_URL's).
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Manage the account's custom menu on WeChat (the access_token is shared with running servers
    /// through the database).
    Menu {
        #[command(subcommand)]
        action: MenuAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum MenuAction {
    /// Check a menu in menu/create's JSON shape against WeChat's rules, then send it.
    Push { file: std::path::PathBuf },
    /// Print the menu followers see now, as JSON that `menu push` takes.
    Show,
    /// Delete the menu on WeChat.
    Delete,
}

#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create an admin. The password is read from standard input, or prompted for on a terminal.
    Create { name: String },
    /// Set an admin's password (their sessions end).
    Passwd { name: String },
    /// List the admins.
    List,
    /// Delete an admin (their sessions end).
    Delete { name: String },
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
        Command::Demo { listen } => demo(listen).await,
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
        Command::Menu { action } => match menu_command(action).await {
            Ok(message) => {
                println!("{message}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Admin { action } => match admin_command(action).await {
            Ok(message) => {
                println!("{message}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Runs a `menu` subcommand; the text to print, or the problem.
async fn menu_command(action: MenuAction) -> Result<String, String> {
    // A menu file is checked before anything else: its problems need neither a database nor WeChat.
    let push = match &action {
        MenuAction::Push { file } => Some(read_menu(file)?),
        MenuAction::Show | MenuAction::Delete => None,
    };
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let store = Store::connect(&config.database_url, config.sqlite_synchronous)
        .await
        .map_err(|e| e.to_string())?;
    let account = app::account(
        &config,
        &store,
        Upstream::new(http_client(), &config.wechat_api_url),
    );
    let result = match push {
        Some(menu) => match account.create_menu(&menu).await {
            Ok(()) => {
                let json = serde_json::to_string(&menu).expect("a menu serializes");
                store
                    .save_menu_draft(&json)
                    .await
                    .map(|()| {
                        format!(
                            "menu pushed: {} buttons (also saved as the draft in /admin/menu)",
                            menu.button.len()
                        )
                    })
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("WeChat refused the menu: {e}")),
        },
        None if matches!(action, MenuAction::Show) => account
            .current_menu()
            .await
            .map(|current| {
                serde_json::to_string_pretty(&current.to_menu()).expect("a menu serializes")
            })
            .map_err(|e| format!("loading the menu failed: {e}")),
        None => account
            .delete_menu()
            .await
            .map(|()| "menu deleted on WeChat".to_owned())
            .map_err(|e| format!("deleting the menu failed: {e}")),
    };
    store.close().await;
    result
}

/// A menu file in menu/create's JSON shape that keeps WeChat's rules, or every reason it does not.
fn read_menu(file: &std::path::Path) -> Result<Menu, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let menu: Menu = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a menu in menu/create's JSON shape ({{\"button\": [...]}}): {e}",
            file.display()
        )
    })?;
    let problems = menu.problems();
    if problems.is_empty() {
        Ok(menu)
    } else {
        Err(format!(
            "nothing was sent; the menu breaks WeChat's rules:\n  - {}",
            problems.join("\n  - ")
        ))
    }
}

/// Runs an `admin` subcommand; the text to print, or the problem.
async fn admin_command(action: AdminAction) -> Result<String, String> {
    let url = Config::database_url_from_env().map_err(|e| e.to_string())?;
    let store = Store::connect(&url, SqliteSync::Full)
        .await
        .map_err(|e| e.to_string())?;
    let result = match action {
        AdminAction::Create { name } => {
            auth::check_name(&name)?;
            if store
                .admin_by_name(&name)
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                return Err(format!(
                    "an admin named {name:?} exists; use `wxportal admin passwd {name}`"
                ));
            }
            let hash = hash_password(&read_password()?)?;
            match store.create_admin(&name, &hash).await {
                Ok(true) => Ok(format!("admin {name:?} created; sign in at /admin/login")),
                Ok(false) => Err(format!("an admin named {name:?} exists")),
                Err(e) => Err(e.to_string()),
            }
        }
        AdminAction::Passwd { name } => {
            if store
                .admin_by_name(&name)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                return Err(format!("no admin named {name:?}"));
            }
            let hash = hash_password(&read_password()?)?;
            match store.set_admin_password(&name, &hash).await {
                Ok(true) => Ok(format!(
                    "password of {name:?} changed; their sessions have ended"
                )),
                Ok(false) => Err(format!("no admin named {name:?}")),
                Err(e) => Err(e.to_string()),
            }
        }
        AdminAction::List => {
            let admins = store.admins().await.map_err(|e| e.to_string())?;
            if admins.is_empty() {
                Ok("no admins yet: create one with `wxportal admin create NAME`".into())
            } else {
                Ok(admins
                    .iter()
                    .map(|a| {
                        format!(
                            "{:<24} created {}  last sign-in {}",
                            a.name,
                            beijing_time(a.created_at),
                            a.last_login_at.map_or_else(|| "never".into(), beijing_time)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
        }
        AdminAction::Delete { name } => match store.delete_admin(&name).await {
            Ok(true) => Ok(format!("admin {name:?} deleted")),
            Ok(false) => Err(format!("no admin named {name:?}")),
            Err(e) => Err(e.to_string()),
        },
    };
    store.close().await;
    result
}

/// The new password: prompted twice without echo on a terminal, else the first line of standard input.
fn read_password() -> Result<String, String> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Once more: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the two passwords differ; nothing changed".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("reading the password from standard input: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    auth::check_password(&password)?;
    Ok(password)
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
/// simulator at `addr`, and from the environment only the bind address (loopback only), public URL, account
/// name and request limits (never a database URL: a `.env` written for `serve` must not point the demo at
/// production data).
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
                .map(|p| format!("{}{}", p.trim_end_matches('/'), demo::OPEN_PATH)),
            ("WXPORTAL_WECHAT_API_URL", Some(a)) => Some(format!("http://{a}{}", demo::API_PATH)),
            // Loopback only: the demo's secrets are printed in this file. `--listen` (an override) is
            // the one way out.
            ("WXPORTAL_BIND", _) => from_env(name).map(|bind| loopback_only(&bind)),
            ("WXPORTAL_ACCOUNT_NAME", _) => {
                from_env(name).or_else(|| Some("wxportal 演示号".to_owned()))
            }
            // The benchmarks play thousands of followers from one address.
            (limit, _) if limit.starts_with("WXPORTAL_LIMIT_") => from_env(name),
            _ => None,
        }
    })
}

/// `bind` with its address replaced by 127.0.0.1 unless it is a loopback address already (the port is
/// kept).
fn loopback_only(bind: &str) -> String {
    match bind.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() => bind.to_owned(),
        Ok(addr) => {
            eprintln!(
                "wxportal demo: listening on 127.0.0.1:{} instead of {addr} (WXPORTAL_BIND); use --listen to choose",
                addr.port()
            );
            format!("127.0.0.1:{}", addr.port())
        }
        // Not an address: the configuration reports it.
        Err(_) => bind.to_owned(),
    }
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
        .with_simulator(demo::router());
    let password = demo_admin(&app.state().store).await?;
    let banner = format!(
        "{banner}\nAdmin area: {portal}/admin   name {DEMO_ADMIN}   password {password}   (new at every start)\n"
    );
    Ok((app, banner))
}

/// The demo's admin name; its password is fresh at every start.
pub const DEMO_ADMIN: &str = "admin";

/// Gives the demo admin a fresh random password (creating the admin on first start) and returns it.
async fn demo_admin(store: &Store) -> Result<String, String> {
    use rand::Rng;
    let password: String = rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    let hash = hash_password(&password)?;
    let done = if store
        .set_admin_password(DEMO_ADMIN, &hash)
        .await
        .map_err(|e| e.to_string())?
    {
        true
    } else {
        store
            .create_admin(DEMO_ADMIN, &hash)
            .await
            .map_err(|e| e.to_string())?
    };
    if done {
        Ok(password)
    } else {
        Err("could not set the demo admin's password".into())
    }
}

async fn demo(listen: Option<std::net::SocketAddr>) -> ExitCode {
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
    match build_demo(&overrides).await {
        Ok((app, banner)) => run_app(app, Some(banner)).await,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
