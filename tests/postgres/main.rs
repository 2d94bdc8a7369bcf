//! The black-box suite of `tests/api` again, each test on a PostgreSQL database of its own (see
//! `tests/api/db.rs`). The browser walks stay in `tests/api`: what they check is the pages, not the
//! database under them.

#[path = "../api/account/mod.rs"]
mod account;
#[path = "../api/admin/mod.rs"]
mod admin;
#[path = "../api/cli.rs"]
mod cli;
#[path = "../api/copy.rs"]
mod copy;
#[path = "../api/db.rs"]
mod db;
#[path = "../api/events/mod.rs"]
mod events;
#[path = "../api/fixtures.rs"]
mod fixtures;
#[path = "../api/hardening/mod.rs"]
mod hardening;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/http_api/mod.rs"]
mod http_api;
#[path = "../api/instances.rs"]
mod instances;
#[path = "../api/metrics.rs"]
mod metrics;
#[path = "../api/mock.rs"]
mod mock;
#[path = "../api/oidc/mod.rs"]
mod oidc;
#[path = "../api/portal/mod.rs"]
mod portal;
#[path = "../api/regressions.rs"]
mod regressions;
#[path = "../api/retention.rs"]
mod retention;
#[path = "../api/vectors.rs"]
mod vectors;
#[path = "../api/webhook/mod.rs"]
mod webhook;

/// The database this binary's tests run on.
pub const BACKEND: db::Backend = db::Backend::Postgres;
