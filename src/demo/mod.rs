//! `wxportal demo`: the whole product on one machine. [`build`] sets it up (demo credentials, its own
//! database, a fresh admin password) and mounts the stand-ins, split by what each stands in for:
//! [`consent`] (WeChat's authorize page, under `/_sim/open`), [`wechat`] (`api.weixin.qq.com`, under
//! `/_sim/api`; the tests' mock WeChat too) and [`chat`] (a follower's phone, at `/_sim/chat`), with the
//! [`followers`] they share; and [`app`], a sample app of the account's own that signs followers in
//! through the OpenID Connect provider (`/_sim/app`). Mounted only by `wxportal demo`, never under `serve`.

pub mod app;
pub mod chat;
pub mod consent;
pub mod followers;
pub mod wechat;

use std::sync::Arc;

use axum::{Extension, Router};

use crate::app::{App, StartError};
use crate::config::{Config, ConfigError};
use crate::passwords::{self, PasswordError};
use crate::store::{Store, StoreError};
use crate::web::state::AppState;

/// Where the stand-ins live, relative to the public URL.
pub(crate) const OPEN_PATH: &str = "/_sim/open";
pub(crate) const API_PATH: &str = "/_sim/api";

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("could not set the demo admin's password")]
    Admin,
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
) -> Result<Config, ConfigError> {
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
                .map(|p| format!("{}{}", p.trim_end_matches('/'), OPEN_PATH)),
            ("WXPORTAL_WECHAT_API_URL", Some(a)) => Some(format!("http://{a}{}", API_PATH)),
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
pub async fn build(overrides: &[(&str, String)]) -> Result<(App, String), DemoError> {
    let bind = demo_config(overrides, None)?;
    let listener = App::bind(&bind).await?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: bind.bind,
        source,
    })?;
    let config = demo_config(overrides, Some(addr))?;
    let (token, appid, key) = (DEMO[0].1, DEMO[1].1, DEMO[2].1);
    let portal = config.public_url.clone();
    let banner = format!(
        "\nwxportal demo: the whole product on this machine, WeChat played by a built-in simulator.\n\
         \nOpen in a browser (a phone-sized window looks best):\
         \n  portal         {portal}/            guide page → consent (simulated) → your profile\
         \n  follower chat  {portal}/_sim/chat   message the account as a follower, see its replies\
         \n  sample app     {portal}/_sim/app    another app of the account's, signing in through OpenID Connect\
         \n\
         \n  webhook        {portal}/wechat      (Token {token}, compatible mode)\
         \n  database       {}\n\
         \nOr play WeChat's server from another terminal:\
         \n  cargo run --release -- send --url {portal}/wechat --token {token} text \"你好\"\
         \n  cargo run --release -- send --url {portal}/wechat --token {token} --aes-key {key} --appid {appid} --mode safe subscribe\n",
        config.database_url
    );
    let sample = app::SampleApp::new();
    let simulator = routes(&config, addr).layer(Extension(sample.clone()));
    let app = App::build_on(listener, config)
        .await?
        .with_simulator(simulator);
    sample.register(&app.state().store, &portal).await?;
    let password = demo_admin(&app.state().store).await?;
    let banner = format!(
        "{banner}\nAdmin area: {portal}/admin   name {DEMO_ADMIN}   password {password}   (new at every start)\n"
    );
    Ok((app, banner))
}

/// The demo's admin name; its password is fresh at every start.
pub const DEMO_ADMIN: &str = "admin";

/// Gives the demo admin a fresh random password (creating the admin on first start) and returns it.
async fn demo_admin(store: &Store) -> Result<String, DemoError> {
    use rand::RngExt;
    let password: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    let hash = passwords::hash(&password)?;
    if store.set_admin_password(DEMO_ADMIN, &hash).await?
        || store.create_admin(DEMO_ADMIN, &hash).await?
    {
        Ok(password)
    } else {
        Err(DemoError::Admin)
    }
}

/// The stand-ins' routes for `config`'s account, served on `addr`.
pub fn routes(config: &Config, addr: std::net::SocketAddr) -> Router<AppState> {
    let wechat = wechat::FakeWeChat::new(
        &config.appid,
        config.appsecret.as_ref().map(|s| s.expose()),
        followers::directory(&config.public_url),
    );
    // The sample followers are the account's followers, for 从微信同步粉丝 (follower sync), with two tags.
    wechat.set_roster(
        followers::FOLLOWERS
            .iter()
            .map(|f| f.openid.to_owned())
            .collect(),
    );
    wechat.add_tag(100, "星标 · starred");
    wechat.add_tag(101, "老客户 · regular");
    let chat = Arc::new(chat::Chat::new(chat::Webhook::new(config, addr)));
    wechat.deliver_to(chat.delivery());
    consent::routes()
        .merge(chat::routes())
        .merge(app::routes())
        .layer(Extension(chat))
        .layer(Extension(wechat.clone()))
        .nest_service(API_PATH, wechat.router())
}
