//! Configuration from the environment (and `.env`), validated all at once with operator-friendly messages.
//!
//! Longer than the other files on purpose: every setting is read, checked and described here in one
//! pass, so an operator sees every problem at once and `wxportal check` prints them all.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Url;

use crate::wechat::{AesKey, MessageMode};

/// A secret value: never shown by `Debug` or `Display`; read it with [`Secret::expose`] where it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: call only where it is sent or used in a computation.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// A description safe to print: that it is set, and its length.
    pub(crate) fn masked(&self) -> String {
        format!("******** ({} characters)", self.0.chars().count())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the access_token is fetched (`WXPORTAL_ACCESS_TOKEN_API`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenApi {
    /// `POST /cgi-bin/stable_token`: every caller gets the same token until it expires.
    Stable,
    /// `GET /cgi-bin/token`: each fetch replaces the previous token.
    Classic,
}

/// Everything wxportal needs to run, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub database_url: String,
    /// The public base URL without a trailing slash, e.g. `https://example.com`.
    pub public_url: String,
    pub token: Secret,
    pub appid: String,
    pub appsecret: Option<Secret>,
    pub aes_key: Option<(Secret, AesKey)>,
    pub aes_key_previous: Option<(Secret, AesKey)>,
    pub message_mode: MessageMode,
    /// How far a request's timestamp may be from now; `None` turns the check off.
    pub max_clock_skew: Option<Duration>,
    pub wechat_api_url: String,
    pub wechat_open_url: String,
    /// Whether each SQLite commit is synced to disk (`full`) or only handed to the OS (`normal`).
    pub sqlite_synchronous: SqliteSync,
    /// Signs session cookies and OAuth states; without it a key is generated once and kept in the database.
    pub session_key: Option<Secret>,
    /// The account's name as followers know it, shown on the portal's pages.
    pub account_name: String,
    /// The header a reverse proxy puts the client's address in (e.g. `X-Real-IP`); without it, the
    /// connection's peer address is the client's.
    pub client_ip_header: Option<axum::http::HeaderName>,
    /// How the account access_token is fetched: `stable_token` (shared by every caller) or the classic
    /// `token` (each fetch replaces the last).
    pub access_token_api: TokenApi,
    /// Per-client request limits on the routes anyone can call (`WXPORTAL_LIMIT_*`).
    pub limits: Limits,
    /// Connections open at once; more wait to be accepted (`WXPORTAL_MAX_CONNECTIONS`, default 4096).
    pub max_connections: usize,
    /// How long messages and finished outbox jobs are kept (`WXPORTAL_KEEP_MESSAGES_DAYS`, default
    /// forever; `WXPORTAL_KEEP_JOBS_DAYS`, default 30).
    pub retention: crate::store::Retention,
    /// `GET /metrics` open to anyone who can reach the server (`WXPORTAL_METRICS=1`); signed-in
    /// operators read `/admin/metrics` either way.
    pub metrics: bool,
    /// Template messages sent per second by a campaign, across every instance
    /// (`WXPORTAL_TEMPLATE_RATE`, default 20).
    pub template_rate: i64,
    /// WeChat calls a second a follower sync makes (`WXPORTAL_SYNC_RATE`, default 10).
    pub sync_rate: u32,
    /// The hour, Beijing time, the nightly follower sync starts (`WXPORTAL_SYNC_HOUR`, 0–23, default 3);
    /// `None` (`off`): no run starts by the clock, though a stopped one is still resumed.
    pub sync_hour: Option<u8>,
    /// How long an event endpoint has to answer (`WXPORTAL_EVENTS_TIMEOUT`, seconds, default 10).
    pub events_timeout: std::time::Duration,
}

/// A request rate: at most `count` at once, refilled evenly over `per` (`30/1m`: a burst of 30, then one
/// every 2 seconds). `None` turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    /// `COUNT/PERIOD` with the period in `s`, `m` or `h` (`30/1m`, `10/10m`), or `off`.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text == "off" {
            return Ok(None);
        }
        let bad = || format!("{text:?} is not COUNT/PERIOD such as 30/1m or 10/10m, nor off");
        let (count, period) = text.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let period = period.trim();
        let unit = match period.chars().last() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            _ => return Err(bad()),
        };
        let amount: u64 = period[..period.len() - 1].parse().map_err(|_| bad())?;
        if count == 0 || amount == 0 {
            return Err(bad());
        }
        Ok(Some(Self {
            count,
            per: Duration::from_secs(amount * unit),
        }))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.per.as_secs();
        match secs {
            s if s % 3600 == 0 => write!(f, "{}/{}h", self.count, s / 3600),
            s if s % 60 == 0 => write!(f, "{}/{}m", self.count, s / 60),
            s => write!(f, "{}/{s}s", self.count),
        }
    }
}

/// The per-client limits, each answered with `429` and `Retry-After` when exceeded. The defaults are
/// far above what a follower or an operator does by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `GET /auth/login` and an app's `/oidc/authorize` (`WXPORTAL_LIMIT_AUTH_LOGIN`, default `30/1m`).
    pub auth_login: Option<Rate>,
    /// `GET /auth/callback` (`WXPORTAL_LIMIT_AUTH_CALLBACK`, default `30/1m`).
    pub auth_callback: Option<Rate>,
    /// Code exchanges with WeChat started by one client (`WXPORTAL_LIMIT_CODE_EXCHANGE`, default
    /// `10/10m`: a burst of 10, then one a minute), so junk codes cannot spend the account's quota.
    pub code_exchange: Option<Rate>,
    /// `POST /admin/login` (`WXPORTAL_LIMIT_ADMIN_LOGIN`, default `10/1m`).
    pub admin_login: Option<Rate>,
    /// `GET /jssdk/config` (`WXPORTAL_LIMIT_JSSDK`, default `120/1m`).
    pub jssdk: Option<Rate>,
    /// Requests to `/api/v1` per API token (`WXPORTAL_LIMIT_API`, default `600/1m`), per instance.
    pub api: Option<Rate>,
}

/// SQLite's durability level for the messages a reply depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSync {
    /// Each group commit is fsynced: an answered message survives a power cut.
    Full,
    /// Commits survive a crash of wxportal, not of the machine; faster on slow disks.
    Normal,
}

/// Every configuration problem found, each as a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wxportal cannot start: the configuration has {} problem(s):",
            self.0.len()
        )?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        write!(f, "See .env.example for every setting.")
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the process environment.
    pub(crate) fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests) and validates all of them.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };

        let bind = match var("WXPORTAL_BIND")
            .as_deref()
            .unwrap_or("127.0.0.1:8080")
            .parse()
        {
            Ok(addr) => addr,
            Err(_) => {
                problems.push("WXPORTAL_BIND must be an address and port such as 127.0.0.1:8080 or 0.0.0.0:80.".into());
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        };

        let database_url = database_url(&mut problems, var("WXPORTAL_DATABASE_URL"));

        let public_url = base_url(
            &mut problems,
            "WXPORTAL_PUBLIC_URL",
            var("WXPORTAL_PUBLIC_URL"),
            "http://127.0.0.1:8080",
        );
        let wechat_api_url = base_url(
            &mut problems,
            "WXPORTAL_WECHAT_API_URL",
            var("WXPORTAL_WECHAT_API_URL"),
            "https://api.weixin.qq.com",
        );
        let wechat_open_url = base_url(
            &mut problems,
            "WXPORTAL_WECHAT_OPEN_URL",
            var("WXPORTAL_WECHAT_OPEN_URL"),
            "https://open.weixin.qq.com",
        );

        let token = match var("WXPORTAL_TOKEN") {
            None => {
                problems.push("WXPORTAL_TOKEN is not set: copy the Token from 基本配置 → 服务器配置 on the WeChat platform.".into());
                Secret::new("")
            }
            Some(t) => {
                if !(3..=32).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    problems.push(format!(
                        "WXPORTAL_TOKEN must be 3–32 letters or digits, as the WeChat platform requires (got {} characters{}).",
                        t.chars().count(),
                        if t.bytes().all(|b| b.is_ascii_alphanumeric()) { "" } else { ", some of them not letters or digits" }
                    ));
                }
                Secret::new(t)
            }
        };

        let appid = match var("WXPORTAL_APPID") {
            None => {
                problems.push("WXPORTAL_APPID is not set: copy the AppID (开发者ID) from 基本配置, it looks like wx followed by 16 hex digits.".into());
                String::new()
            }
            Some(id) => {
                let well_formed = id.len() == 18
                    && id.starts_with("wx")
                    && id[2..].bytes().all(|b| b.is_ascii_hexdigit());
                if !well_formed {
                    problems.push(format!(
                        "WXPORTAL_APPID should look like wx followed by 16 hex digits (got {id:?})."
                    ));
                }
                id
            }
        };

        let appsecret = var("WXPORTAL_APPSECRET").map(|s| {
            if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                problems.push(format!(
                    "WXPORTAL_APPSECRET should be the 32 hex digits of the AppSecret (开发者密码) (got {} characters).",
                    s.chars().count()
                ));
            }
            Secret::new(s)
        });

        let mut aes = |name: &str| {
            var(name).and_then(|k| match AesKey::from_encoding_aes_key(&k) {
                Ok(key) => Some((Secret::new(k), key)),
                Err(e) => {
                    problems.push(format!(
                        "{name} must be exactly 43 letters or digits that decode to 32 bytes, as generated by the WeChat platform ({e})."
                    ));
                    None
                }
            })
        };
        let aes_key = aes("WXPORTAL_ENCODING_AES_KEY");
        let aes_key_previous = aes("WXPORTAL_ENCODING_AES_KEY_PREVIOUS");
        let key_given = get("WXPORTAL_ENCODING_AES_KEY").is_some_and(|k| !k.trim().is_empty());
        if aes_key_previous.is_some() && !key_given {
            problems.push("WXPORTAL_ENCODING_AES_KEY_PREVIOUS is set without WXPORTAL_ENCODING_AES_KEY: set the current key too.".into());
        }

        let message_mode = match var("WXPORTAL_MESSAGE_MODE").as_deref() {
            None if key_given => MessageMode::Compat,
            None => MessageMode::Plain,
            Some(other) => other.parse().unwrap_or_else(|_| {
                problems.push(format!(
                    "WXPORTAL_MESSAGE_MODE must be plain, compat or safe (got {other:?})."
                ));
                MessageMode::Plain
            }),
        };
        if message_mode != MessageMode::Plain && !key_given {
            problems.push(format!(
                "WXPORTAL_MESSAGE_MODE is {} but WXPORTAL_ENCODING_AES_KEY is not set: copy the EncodingAESKey from 基本配置.",
                message_mode.as_str()
            ));
        }

        let max_clock_skew = match var("WXPORTAL_MAX_CLOCK_SKEW")
            .as_deref()
            .unwrap_or("300")
            .parse::<u64>()
        {
            Ok(0) => None,
            Ok(secs) => Some(Duration::from_secs(secs)),
            Err(_) => {
                problems.push("WXPORTAL_MAX_CLOCK_SKEW must be a whole number of seconds (0 turns the check off).".into());
                None
            }
        };

        let sqlite_synchronous = match var("WXPORTAL_SQLITE_SYNCHRONOUS").as_deref() {
            None | Some("full") => SqliteSync::Full,
            Some("normal") => SqliteSync::Normal,
            Some(other) => {
                problems.push(format!(
                    "WXPORTAL_SQLITE_SYNCHRONOUS must be full or normal (got {other:?})."
                ));
                SqliteSync::Full
            }
        };

        let session_key = var("WXPORTAL_SESSION_KEY").map(|k| {
            if k.len() < 32 {
                problems.push(format!(
                    "WXPORTAL_SESSION_KEY must be at least 32 characters of random text, e.g. from `openssl rand -hex 32` (got {}).",
                    k.chars().count()
                ));
            }
            Secret::new(k)
        });

        let client_ip_header = var("WXPORTAL_CLIENT_IP_HEADER").and_then(|h| {
            axum::http::HeaderName::try_from(h.as_str())
                .map_err(|_| {
                    problems.push(format!(
                        "WXPORTAL_CLIENT_IP_HEADER must be a header name such as X-Real-IP (got {h:?})."
                    ))
                })
                .ok()
        });

        let access_token_api = match var("WXPORTAL_ACCESS_TOKEN_API").as_deref() {
            None | Some("stable_token") => TokenApi::Stable,
            Some("token") => TokenApi::Classic,
            Some(other) => {
                problems.push(format!(
                    "WXPORTAL_ACCESS_TOKEN_API must be stable_token or token (got {other:?})."
                ));
                TokenApi::Stable
            }
        };

        let mut rate = |name: &str, default: &str| {
            let text = var(name).unwrap_or_else(|| default.to_owned());
            Rate::parse(&text).unwrap_or_else(|e| {
                problems.push(format!("{name}: {e}."));
                None
            })
        };
        let limits = Limits {
            auth_login: rate("WXPORTAL_LIMIT_AUTH_LOGIN", "30/1m"),
            auth_callback: rate("WXPORTAL_LIMIT_AUTH_CALLBACK", "30/1m"),
            code_exchange: rate("WXPORTAL_LIMIT_CODE_EXCHANGE", "10/10m"),
            admin_login: rate("WXPORTAL_LIMIT_ADMIN_LOGIN", "10/1m"),
            jssdk: rate("WXPORTAL_LIMIT_JSSDK", "120/1m"),
            api: rate("WXPORTAL_LIMIT_API", "600/1m"),
        };

        let max_connections = match var("WXPORTAL_MAX_CONNECTIONS").map(|v| v.parse::<usize>()) {
            None => 4096,
            Some(Ok(n)) if n > 0 => n,
            Some(_) => {
                problems.push("WXPORTAL_MAX_CONNECTIONS must be a whole number above 0.".into());
                4096
            }
        };

        let mut days = |name: &str, default: Option<u32>| match var(name).as_deref() {
            None => default,
            Some("forever") => None,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    problems.push(format!(
                        "{name} must be a number of days above 0, or forever (got {v:?})."
                    ));
                    default
                }
            },
        };
        let retention = crate::store::Retention {
            messages_days: days("WXPORTAL_KEEP_MESSAGES_DAYS", None),
            jobs_days: days("WXPORTAL_KEEP_JOBS_DAYS", Some(30)).unwrap_or(u32::MAX / 86_400),
        };

        let metrics = match var("WXPORTAL_METRICS").as_deref() {
            None | Some("0") | Some("false") | Some("off") => false,
            Some("1") | Some("true") | Some("on") => true,
            Some(v) => {
                problems.push(format!("WXPORTAL_METRICS must be 1 or 0 (got {v:?})."));
                false
            }
        };

        let template_rate = match var("WXPORTAL_TEMPLATE_RATE").map(|v| v.parse::<i64>()) {
            None => 20,
            Some(Ok(n)) if (1..=10_000).contains(&n) => n,
            Some(_) => {
                problems.push(
                    "WXPORTAL_TEMPLATE_RATE must be a number of messages per second, 1 to 10000."
                        .into(),
                );
                20
            }
        };

        let sync_rate = match var("WXPORTAL_SYNC_RATE").map(|v| v.parse::<u32>()) {
            None => 10,
            Some(Ok(n)) if (1..=1000).contains(&n) => n,
            Some(_) => {
                problems.push(
                    "WXPORTAL_SYNC_RATE must be a number of calls per second, 1 to 1000.".into(),
                );
                10
            }
        };
        let sync_hour = match var("WXPORTAL_SYNC_HOUR")
            .as_deref()
            .map(|v| (v, v.parse::<u8>()))
        {
            None => Some(3),
            Some(("off", _)) => None,
            Some((_, Ok(h))) if h < 24 => Some(h),
            Some(_) => {
                problems.push(
                    "WXPORTAL_SYNC_HOUR must be an hour of the day in Beijing time, 0 to 23, or off."
                        .into(),
                );
                None
            }
        };
        let events_timeout = match var("WXPORTAL_EVENTS_TIMEOUT").map(|v| v.parse::<u64>()) {
            None => 10,
            Some(Ok(n)) if (1..=60).contains(&n) => n,
            Some(_) => {
                problems
                    .push("WXPORTAL_EVENTS_TIMEOUT must be a number of seconds, 1 to 60.".into());
                10
            }
        };

        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        Ok(Self {
            template_rate,
            events_timeout: std::time::Duration::from_secs(events_timeout),
            sync_rate,
            sync_hour,
            metrics,
            retention,
            limits,
            max_connections,
            access_token_api,
            bind,
            database_url,
            public_url,
            token,
            appid,
            appsecret,
            aes_key,
            aes_key_previous,
            message_mode,
            max_clock_skew,
            wechat_api_url,
            wechat_open_url,
            sqlite_synchronous,
            session_key,
            account_name: var("WXPORTAL_ACCOUNT_NAME").unwrap_or_else(|| "公众号".to_owned()),
            client_ip_header,
        })
    }

    /// Only the database URL, for commands that need nothing else (`wxportal admin`).
    pub(crate) fn database_url_from_env() -> Result<String, ConfigError> {
        let mut problems = Vec::new();
        let url = database_url(
            &mut problems,
            std::env::var("WXPORTAL_DATABASE_URL")
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
        );
        if problems.is_empty() {
            Ok(url)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Whether the public URL is https: cookies are then `Secure` and browsers told to stay on https.
    pub(crate) fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// Whether `url` is on this server's public origin: the same scheme, host and port as the public
    /// URL, parsed (a prefix match would take `http://host:8080.evil.example`), and no user info.
    pub(crate) fn is_own_origin(&self, url: &str) -> bool {
        let (Ok(url), Ok(ours)) = (
            reqwest::Url::parse(url),
            reqwest::Url::parse(&self.public_url),
        ) else {
            return false;
        };
        url.scheme() == ours.scheme()
            && url.host_str() == ours.host_str()
            && url.port_or_known_default() == ours.port_or_known_default()
            && url.username().is_empty()
            && url.password().is_none()
    }

    /// The settings in use, one per line, secrets masked: what `wxportal check` prints.
    pub(crate) fn describe(&self) -> String {
        let secret = |s: Option<&Secret>| s.map_or_else(|| "(not set)".to_owned(), Secret::masked);
        let mut lines = vec![
            ("WXPORTAL_BIND", self.bind.to_string()),
            (
                "WXPORTAL_DATABASE_URL",
                crate::store::redact_url(&self.database_url),
            ),
            ("WXPORTAL_PUBLIC_URL", self.public_url.clone()),
            ("WXPORTAL_TOKEN", self.token.masked()),
            ("WXPORTAL_APPID", self.appid.clone()),
            ("WXPORTAL_APPSECRET", secret(self.appsecret.as_ref())),
            (
                "WXPORTAL_ENCODING_AES_KEY",
                secret(self.aes_key.as_ref().map(|(s, _)| s)),
            ),
            (
                "WXPORTAL_ENCODING_AES_KEY_PREVIOUS",
                secret(self.aes_key_previous.as_ref().map(|(s, _)| s)),
            ),
            (
                "WXPORTAL_MESSAGE_MODE",
                self.message_mode.as_str().to_owned(),
            ),
            (
                "WXPORTAL_MAX_CLOCK_SKEW",
                self.max_clock_skew
                    .map_or_else(|| "0 (off)".to_owned(), |d| format!("{} s", d.as_secs())),
            ),
            ("WXPORTAL_WECHAT_API_URL", self.wechat_api_url.clone()),
            ("WXPORTAL_WECHAT_OPEN_URL", self.wechat_open_url.clone()),
            (
                "WXPORTAL_SQLITE_SYNCHRONOUS",
                match self.sqlite_synchronous {
                    SqliteSync::Full => "full",
                    SqliteSync::Normal => "normal",
                }
                .to_owned(),
            ),
            ("WXPORTAL_ACCOUNT_NAME", self.account_name.clone()),
            (
                "WXPORTAL_CLIENT_IP_HEADER",
                self.client_ip_header.as_ref().map_or_else(
                    || "(not set: the connection's address)".to_owned(),
                    ToString::to_string,
                ),
            ),
            (
                "WXPORTAL_ACCESS_TOKEN_API",
                match self.access_token_api {
                    TokenApi::Stable => "stable_token",
                    TokenApi::Classic => "token",
                }
                .to_owned(),
            ),
            (
                "WXPORTAL_SESSION_KEY",
                self.session_key.as_ref().map_or_else(
                    || "(not set: generated once, kept in the database)".to_owned(),
                    Secret::masked,
                ),
            ),
        ];
        let limit = |rate: Option<Rate>| rate.map_or_else(|| "off".to_owned(), |r| r.to_string());
        lines.extend([
            ("WXPORTAL_MAX_CONNECTIONS", self.max_connections.to_string()),
            (
                "WXPORTAL_KEEP_MESSAGES_DAYS",
                self.retention
                    .messages_days
                    .map_or_else(|| "forever".to_owned(), |d| d.to_string()),
            ),
            (
                "WXPORTAL_KEEP_JOBS_DAYS",
                self.retention.jobs_days.to_string(),
            ),
            (
                "WXPORTAL_TEMPLATE_RATE",
                format!("{} messages/s", self.template_rate),
            ),
            (
                "WXPORTAL_SYNC_RATE",
                format!("{} WeChat calls/s", self.sync_rate),
            ),
            (
                "WXPORTAL_SYNC_HOUR",
                match self.sync_hour {
                    Some(h) => format!("{h:02}:00 Beijing time"),
                    None => "off".into(),
                },
            ),
            (
                "WXPORTAL_EVENTS_TIMEOUT",
                format!("{} s", self.events_timeout.as_secs()),
            ),
            (
                "WXPORTAL_METRICS",
                if self.metrics {
                    "1 (GET /metrics is open)"
                } else {
                    "0 (/admin/metrics only)"
                }
                .to_owned(),
            ),
            ("WXPORTAL_LIMIT_AUTH_LOGIN", limit(self.limits.auth_login)),
            (
                "WXPORTAL_LIMIT_AUTH_CALLBACK",
                limit(self.limits.auth_callback),
            ),
            (
                "WXPORTAL_LIMIT_CODE_EXCHANGE",
                limit(self.limits.code_exchange),
            ),
            ("WXPORTAL_LIMIT_ADMIN_LOGIN", limit(self.limits.admin_login)),
            ("WXPORTAL_LIMIT_JSSDK", limit(self.limits.jssdk)),
            ("WXPORTAL_LIMIT_API", limit(self.limits.api)),
        ]);
        lines
            .iter()
            .map(|(k, v)| format!("{k:<36} {v}\n"))
            .collect()
    }
}

/// `WXPORTAL_DATABASE_URL`: SQLite (the default, `wxportal.db` in the working directory) or PostgreSQL.
fn database_url(problems: &mut Vec<String>, value: Option<String>) -> String {
    let url = value.unwrap_or_else(|| "sqlite://wxportal.db".into());
    if !["sqlite:", "postgres:", "postgresql:"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        problems.push(format!(
            "WXPORTAL_DATABASE_URL must be a sqlite: URL such as sqlite://wxportal.db or a postgres: URL such as postgres://wxportal@localhost/wxportal (got {:?})",
            crate::store::redact_url(&url)
        ));
    }
    url
}

/// An http(s) base URL, stored without its trailing slash.
fn base_url(
    problems: &mut Vec<String>,
    name: &str,
    value: Option<String>,
    default: &str,
) -> String {
    let value = value.unwrap_or_else(|| default.to_owned());
    match Url::parse(&value) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.query().is_none() =>
        {
            value.trim_end_matches('/').to_owned()
        }
        _ => {
            problems.push(format!(
                "{name} must be an http:// or https:// URL with a host and no query, such as {default} (got {value:?})."
            ));
            value
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const MINIMAL: [(&str, &str); 2] = [
        ("WXPORTAL_TOKEN", "token123"),
        ("WXPORTAL_APPID", "wx1234567890abcdef"),
    ];

    #[test]
    fn defaults_apply_when_only_token_and_appid_are_set() {
        let c = config(&MINIMAL).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://wxportal.db");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.message_mode, MessageMode::Plain);
        assert_eq!(c.max_clock_skew, Some(Duration::from_secs(300)));
        assert_eq!(c.wechat_api_url, "https://api.weixin.qq.com");
        assert_eq!(c.sqlite_synchronous, SqliteSync::Full);
        assert_eq!(c.sync_hour, Some(3));
    }

    #[test]
    fn the_nightly_sync_hour_is_an_hour_of_the_day_or_off() {
        let hour = |v: &str| {
            let mut vars = MINIMAL.to_vec();
            vars.push(("WXPORTAL_SYNC_HOUR", v));
            config(&vars).map(|c| c.sync_hour)
        };
        assert_eq!(hour("0").unwrap(), Some(0));
        assert_eq!(hour(" 23 ").unwrap(), Some(23));
        assert_eq!(hour("off").unwrap(), None);
        for bad in ["24", "-1", "3am", "03:00", "OFF"] {
            let err = hour(bad).unwrap_err().to_string();
            assert!(err.contains("WXPORTAL_SYNC_HOUR"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_key_turns_on_compatible_mode_by_default() {
        let mut vars = MINIMAL.to_vec();
        vars.push((
            "WXPORTAL_ENCODING_AES_KEY",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        ));
        assert_eq!(config(&vars).unwrap().message_mode, MessageMode::Compat);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = config(&[
            ("WXPORTAL_TOKEN", "a!"),
            ("WXPORTAL_APPID", "app"),
            ("WXPORTAL_ENCODING_AES_KEY", "tooshort"),
            ("WXPORTAL_MESSAGE_MODE", "secret"),
            ("WXPORTAL_BIND", "nowhere"),
            ("WXPORTAL_PUBLIC_URL", "example.com"),
            ("WXPORTAL_MAX_CLOCK_SKEW", "-1"),
            ("WXPORTAL_SQLITE_SYNCHRONOUS", "off"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.0.len(), 8, "{text}");
        for needle in [
            "WXPORTAL_TOKEN",
            "WXPORTAL_APPID",
            "43",
            "plain, compat or safe",
            "WXPORTAL_BIND",
            "WXPORTAL_PUBLIC_URL",
            "CLOCK_SKEW",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn safe_mode_without_a_key_is_refused() {
        let mut vars = MINIMAL.to_vec();
        vars.push(("WXPORTAL_MESSAGE_MODE", "safe"));
        assert!(
            config(&vars)
                .unwrap_err()
                .to_string()
                .contains("ENCODING_AES_KEY is not set")
        );
    }

    #[test]
    fn secrets_never_appear_in_debug_or_describe() {
        let mut vars = MINIMAL.to_vec();
        vars.push(("WXPORTAL_APPSECRET", "0123456789abcdef0123456789abcdef"));
        let c = config(&vars).unwrap();
        for text in [format!("{c:?}"), c.describe()] {
            assert!(!text.contains("token123"));
            assert!(!text.contains("0123456789abcdef0123456789abcdef"));
        }
    }

    #[test]
    fn retention_is_forever_for_messages_and_a_month_for_jobs_unless_set() {
        let c = config(&MINIMAL).unwrap();
        assert_eq!(c.retention.messages_days, None);
        assert_eq!(c.retention.jobs_days, 30);
        let mut vars = MINIMAL.to_vec();
        vars.push(("WXPORTAL_KEEP_MESSAGES_DAYS", "90"));
        vars.push(("WXPORTAL_KEEP_JOBS_DAYS", "7"));
        let c = config(&vars).unwrap();
        assert_eq!(c.retention.messages_days, Some(90));
        assert_eq!(c.retention.jobs_days, 7);
        for bad in ["0", "-1", "a month"] {
            let mut vars = MINIMAL.to_vec();
            vars.push(("WXPORTAL_KEEP_MESSAGES_DAYS", bad));
            let error = config(&vars).unwrap_err().to_string();
            assert!(error.contains("WXPORTAL_KEEP_MESSAGES_DAYS"), "{error}");
        }
    }
}
