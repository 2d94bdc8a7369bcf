//! wxportal: a self-hosted server for WeChat Official Accounts.
//!
//! The modules form layers; each depends only on the layers below it (docs/architecture.md draws them and
//! follows a request through):
//!
//! ```text
//! cli, demo                 commands; the demo's stand-in for WeChat
//! app                       wiring: opens the store, starts the workers, serves `web`
//! web                       everything that speaks HTTP to browsers and to WeChat's server
//! outbox, events, replies,  background delivery to WeChat and to the account's endpoints; what the
//!   oidc                      account answers; the OIDC provider
//! upstream                  the outbound client of WeChat's HTTP API, with the shared access_token
//! store                     all SQL
//! config, wechat, time,    settings; the protocol, free of HTTP; clocks; password hashes
//!   passwords
//! ```

/// Wiring: the bound server, its workers and its state.
pub mod app;
/// The account's bot: a reply rule that asks a URL for its answer, within a budget.
pub mod bot;
/// The command line: serve, check, demo, send, admin, menu.
pub mod cli;
/// Settings from the environment, validated at once.
pub mod config;
/// `wxportal demo`: its set-up and its stand-in for WeChat's servers and a follower's phone.
pub mod demo;
/// Event webhooks out: what happens on the account, signed and delivered to the account's systems.
pub mod events;
/// Followers imported from WeChat (resumable, paced) and the account's follower tags.
pub mod followers;
/// Images uploaded as permanent material, with thumbnails.
pub mod media;
/// wxportal as an OpenID Connect provider for the account's own apps.
pub mod oidc;
/// Replies after the 5-second window and follower info, delivered from a durable queue.
pub mod outbox;
/// Operators' names and password hashes.
pub mod passwords;
/// QR codes with a scene: created on WeChat, drawn locally.
pub mod qr;
/// What the account answers to each message.
pub mod replies;
/// All SQL.
pub mod store;
/// Logging set-up.
pub mod telemetry;
/// Template messages: the account's templates, filled in, previewed, sent in campaigns.
pub mod templates;
/// Unix time and Beijing time.
pub mod time;
/// The typed client of WeChat's HTTP API (`api.weixin.qq.com`), sharing one access_token.
pub mod upstream;
/// Everything that speaks HTTP: the URL map, the webhook, the portal, the admin area.
pub mod web;
/// The WeChat protocol, free of any HTTP framework.
pub mod wechat;
