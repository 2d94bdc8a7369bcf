//! The application: shared state, and a server bound to its address (port 0 in tests).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::outbox::Outbox;
use crate::replies::Replies;
use crate::store::{Store, StoreError};
use crate::upstream::account::Account;
use crate::upstream::sns::SnsClient;
use crate::upstream::token::Credentials;
use crate::upstream::{Upstream, http_client};
use crate::web;
use crate::web::keys::Keys;
use crate::web::limits::Limits;
use crate::web::state::{AppState, Shared};

/// A server whose listener is bound and whose database is open and migrated, ready to run.
pub struct App {
    listener: TcpListener,
    state: AppState,
    /// Pages added under the pages' layers: the demo's simulator.
    extra: Option<axum::Router<AppState>>,
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the OpenID Connect provider cannot start: {0}")]
    Oidc(#[from] crate::oidc::ProviderError),
}

impl App {
    /// Opens the database and binds the listener. Nothing is served until [`App::run`].
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let listener = Self::bind(&config).await?;
        Self::build_on(listener, config).await
    }

    /// Binds the configured address: for callers that need the port before building (the demo).
    pub async fn bind(config: &Config) -> Result<TcpListener, StartError> {
        TcpListener::bind(config.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.bind,
                source,
            })
    }

    /// Opens the database and serves on an already bound listener.
    pub(crate) async fn build_on(
        listener: TcpListener,
        config: Config,
    ) -> Result<Self, StartError> {
        let store = Store::connect(&config.database_url, config.sqlite_synchronous).await?;
        tokio::spawn(store.clone().prune_regularly(config.retention));
        let keys = Keys::load(&config, &store).await?;
        let oidc = Arc::new(crate::oidc::Provider::load(store.clone(), &config.public_url).await?);
        let replies = Replies::load(store.clone(), &config.public_url).await?;
        tokio::spawn(Arc::clone(&replies).watch());
        let http = http_client();
        let upstream = Upstream::new(http.clone(), &config.wechat_api_url);
        let account = account(&config, &store, upstream.clone());
        tokio::spawn(Arc::clone(&account.credentials).keep_fresh());
        let bots = Arc::new(crate::bot::Bots::load(&store, http.clone()).await?);
        let outbox = Arc::new(Outbox::new(
            store.clone(),
            account.clone(),
            Arc::clone(&replies),
            Arc::clone(&bots),
            config.template_rate,
        ));
        tokio::spawn(Arc::clone(&outbox).run());
        let syncer = Arc::new(crate::followers::Syncer::new(
            store.clone(),
            account.clone(),
            config.sync_rate,
        ));
        if account.credentials.configured() {
            tokio::spawn(Arc::clone(&syncer).nightly(config.sync_hour));
        }
        let subscriptions = crate::events::Subscriptions::load(store.clone()).await?;
        tokio::spawn(Arc::clone(&subscriptions).watch());
        let deliverer = Arc::new(crate::events::Deliverer::new(
            store.clone(),
            http.clone(),
            config.events_timeout,
        ));
        tokio::spawn(Arc::clone(&deliverer).run());
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let limits = Arc::new(Limits::new(&config));
        tokio::spawn(Arc::clone(&limits).tidy_regularly());
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let state = AppState::new(Shared {
            limits,
            password_checks: Arc::new(tokio::sync::Semaphore::new(cores)),
            local_addr,
            oidc,
            replies,
            account,
            outbox,
            subscriptions,
            deliverer,
            bots,
            syncer,
            sns: Arc::new(SnsClient::new(
                upstream,
                &config.appid,
                config.appsecret.clone(),
            )),
            http,
            keys,
            config: Arc::new(config),
            store,
            demo: false,
            metrics: Default::default(),
        });
        Ok(Self {
            listener,
            state,
            extra: None,
        })
    }

    /// Mounts the WeChat simulator's `routes` (`wxportal demo` only) and marks every page with its banner.
    pub(crate) fn with_simulator(mut self, routes: axum::Router<AppState>) -> Self {
        self.state.make_mut().demo = true;
        self.extra = Some(routes);
        self
    }

    /// The address actually bound (the real port when the configuration asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state, for callers that need the store or configuration before serving.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and flushes the database.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let store = self.state.store.clone();
        let max_connections = self.state.config.max_connections;
        let router = web::router(self.state, self.extra);
        let served = web::server::serve(self.listener, router, max_connections, shutdown).await;
        store.close().await;
        served
    }
}

/// The account's API client, sharing the access_token through `store` with every other process.
pub fn account(config: &Config, store: &Store, upstream: Upstream) -> Account {
    let credentials = Credentials::new(
        store.clone(),
        upstream.clone(),
        &config.appid,
        config.appsecret.clone(),
        config.access_token_api,
    );
    Account::new(upstream, Arc::new(credentials))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
