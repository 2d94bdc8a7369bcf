//! Black-box tests: the real server on a random loopback port, a fresh SQLite file per test. The same
//! suite runs on PostgreSQL from `tests/postgres`.

mod account;
mod admin;
mod browser;
mod cli;
mod db;
mod events;
mod fixtures;
mod hardening;
mod helpers;
mod http_api;
mod metrics;
mod mock;
mod oidc;
mod portal;
mod regressions;
mod retention;
mod vectors;
mod webhook;

/// The database this binary's tests run on.
pub const BACKEND: db::Backend = db::Backend::Sqlite;
