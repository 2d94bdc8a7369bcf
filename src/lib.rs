//! wxportal: a self-hosted server for WeChat Official Accounts.
//!
//! A request flows one way: [`routes`] → a feature's handlers ([`webhook`]) → the protocol
//! ([`wechat`]) and the replies ([`replies`]) → the database ([`store`]).

/// The application state and the bound server.
pub mod app;
/// Subcommands: serve, check, send.
pub mod cli;
/// Settings from the environment, validated at once.
pub mod config;
/// The one error type and its HTTP responses.
pub mod error;
/// What the account answers to each message.
pub mod replies;
/// The URL map and shared layers.
pub mod routes;
/// `wxportal send`: a WeChat-server simulator on the command line.
pub mod send;
/// All SQL.
pub mod store;
/// Logging set-up.
pub mod telemetry;
/// The `/wechat` endpoint.
pub mod webhook;
/// The WeChat protocol, free of any HTTP framework.
pub mod wechat;
