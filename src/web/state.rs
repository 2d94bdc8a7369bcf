//! The state every handler can reach.

use std::net::SocketAddr;
use std::sync::Arc;

use super::keys::Keys;
use super::limits::Limits;
use crate::config::Config;
use crate::outbox::Outbox;
use crate::replies::Replies;
use crate::store::Store;
use crate::upstream::account::Account;
use crate::upstream::sns::SnsClient;

/// What every handler can reach: one allocation that every request shares, so that handing it to a
/// handler or a middleware counts one reference (cloned field by field, some twenty reference counts a
/// time, it was a twentieth of a sign-in's CPU).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// The state to change before serving (a copy of it, if it is already shared).
    pub(crate) fn make_mut(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Clone, Debug)]
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    /// The reply rules, cached.
    pub replies: Arc<Replies>,
    /// The one outbound HTTP client (timeouts set, redirects off).
    pub http: reqwest::Client,
    /// Web authorization's calls to WeChat.
    pub sns: Arc<SnsClient>,
    /// The account's calls to WeChat, with the shared access_token.
    pub account: Account,
    /// Work for WeChat's API that must not be lost.
    pub outbox: Arc<Outbox>,
    /// Which event types the account's endpoints want, cached.
    pub subscriptions: Arc<crate::events::Subscriptions>,
    /// Imports followers from WeChat.
    pub syncer: Arc<crate::followers::Syncer>,
    /// Asks the account's bots.
    pub bots: Arc<crate::bot::Bots>,
    /// Delivers queued events to the account's endpoints.
    pub deliverer: Arc<crate::events::Deliverer>,
    /// The session-cookie and OAuth-state keys.
    pub keys: Keys,
    /// Set by `wxportal demo`: the WeChat simulator is mounted and pages carry its banner.
    pub demo: bool,
    /// Per-client request limits on the routes anyone can call.
    pub limits: Arc<Limits>,
    /// Admin password checks running at once: at most one per core.
    pub password_checks: Arc<tokio::sync::Semaphore>,
    /// The counters `/metrics` shows.
    pub metrics: Arc<super::metrics::Metrics>,
    /// The OpenID Connect provider the account's apps sign in through.
    pub oidc: Arc<crate::oidc::Provider>,
    /// The address this server listens on (the simulator's chat posts to its own webhook there).
    pub local_addr: SocketAddr,
}
