//! wxportal: a self-hosted server for WeChat Official Accounts.
//!
//! A request flows one way: [`routes`] → a feature's handlers ([`webhook`], [`oauth`], [`pages`], [`admin`]) →
//! the protocol ([`wechat`], [`api`]) and the replies ([`replies`]) → the database ([`store`]).

/// The operator's area under `/admin`.
pub mod admin;
/// The typed client of WeChat's HTTP API.
pub mod api;
/// The application state and the bound server.
pub mod app;
/// Subcommands: serve, check, send.
pub mod cli;
/// Settings from the environment, validated at once.
pub mod config;
/// The one error type and its HTTP responses.
pub mod error;
/// `/jssdk/config`: the JS-SDK signature for our own pages.
pub mod jssdk;
/// Who the client is, and per-client request limits.
pub mod limits;
/// Web authorization: login, callback, logout.
pub mod oauth;
/// Replies after the 5-second window and follower info, delivered from a durable queue.
pub mod outbox;
/// The follower's pages and the static assets.
pub mod pages;
/// What the account answers to each message.
pub mod replies;
/// The URL map and shared layers.
pub mod routes;
/// `wxportal send`: a WeChat-server simulator on the command line.
pub mod send;
/// The HTTP server: header timeout, connection cap, graceful shutdown.
pub mod server;
/// Sessions, the server key and CSRF tokens.
pub mod sessions;
/// `wxportal demo`'s stand-in for WeChat's servers and a follower's phone.
pub mod simulator;
/// All SQL.
pub mod store;
/// Logging set-up.
pub mod telemetry;
/// The `/wechat` endpoint.
pub mod webhook;
/// The WeChat protocol, free of any HTTP framework.
pub mod wechat;
