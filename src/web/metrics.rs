//! `GET /metrics`: Prometheus's text format (OpenMetrics). Requests and latency by route, webhook messages
//! by outcome, the outbox, the access_token and the database pool. Served at `/metrics` only with
//! `WXPORTAL_METRICS=1`, and always at `/admin/metrics` to a signed-in operator.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::error::AppError;
use super::state::AppState;
use crate::time::unix_now;
use crate::upstream::token::Kind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// What happened to a message the webhook accepted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MessageOutcome {
    /// Stored now and answered.
    Stored,
    /// A retry: answered with the stored reply (deduplicated).
    Duplicate,
    /// A signed query used again with another message: refused.
    Replayed,
}

/// The counters the server keeps, and the gauges read at each scrape.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    messages: Family<OutcomeLabels, Counter>,
    outbox: Family<StateLabels, Gauge>,
    token_age: Gauge,
    token_expires_in: Gauge,
    token_fetches_today: Gauge,
    pool: Family<StateLabels, Gauge>,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wxportal");
        let requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by route, method and status",
            requests.clone(),
        );
        let latency = Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            latency.clone(),
        );
        let messages = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_messages",
            "Messages and events the webhook accepted: stored, duplicate (a retry answered with the stored reply) or replayed (refused)",
            messages.clone(),
        );
        let outbox = Family::<StateLabels, Gauge>::default();
        registry.register(
            "outbox_jobs",
            "Outbox jobs: pending (queued or being sent), failed (given up), done in the last 24 hours",
            outbox.clone(),
        );
        let token_age = Gauge::default();
        registry.register(
            "access_token_age_seconds",
            "Seconds since the shared access_token was fetched (-1: none yet)",
            token_age.clone(),
        );
        let token_expires_in = Gauge::default();
        registry.register(
            "access_token_expires_in_seconds",
            "Seconds until the shared access_token expires (-1: none yet)",
            token_expires_in.clone(),
        );
        let token_fetches_today = Gauge::default();
        registry.register(
            "access_token_fetches_today",
            "access_token fetches today, Beijing time (WeChat allows 2000 a day)",
            token_fetches_today.clone(),
        );
        let pool = Family::<StateLabels, Gauge>::default();
        registry.register(
            "database_connections",
            "This instance's database connections: in use, idle, and the pool's maximum",
            pool.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            messages,
            outbox,
            token_age,
            token_expires_in,
            token_fetches_today,
            pool,
        }
    }
}

impl Metrics {
    pub(crate) fn message(&self, outcome: MessageOutcome) {
        let outcome = match outcome {
            MessageOutcome::Stored => "stored",
            MessageOutcome::Duplicate => "duplicate",
            MessageOutcome::Replayed => "replayed",
        };
        self.messages
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The text a scrape gets: the counters, and the gauges read now.
    async fn render(&self, state: &AppState) -> Result<String, AppError> {
        let outbox = state.store.outbox_counts().await?;
        for (label, value) in [
            ("pending", outbox.pending),
            ("failed", outbox.failed),
            ("done_24h", outbox.done_today),
        ] {
            self.outbox
                .get_or_create(&StateLabels { state: label })
                .set(value);
        }
        let token = state.store.credential(Kind::AccessToken.as_str()).await?;
        let now = unix_now();
        let fetched = token.value.is_some();
        self.token_age
            .set(if fetched { now - token.fetched_at } else { -1 });
        self.token_expires_in.set(if fetched {
            (token.expires_at - now).max(0)
        } else {
            -1
        });
        self.token_fetches_today.set(
            state
                .store
                .credential_fetches_today(Kind::AccessToken.as_str())
                .await?,
        );
        let pool = state.store.pool_use();
        for (label, value) in [
            ("in_use", pool.in_use),
            ("idle", pool.idle),
            ("max", pool.max),
        ] {
            self.pool
                .get_or_create(&StateLabels { state: label })
                .set(i64::from(value));
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .map_err(|_| AppError::Internal("encoding the metrics"))?;
        Ok(text)
    }
}

/// Counts a routed request and times it (a middleware on every route).
pub(crate) async fn record(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let metrics = &state.metrics;
    metrics
        .latency
        .get_or_create(&LatencyLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RouteLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics` (with `WXPORTAL_METRICS=1`) and `GET /admin/metrics` (signed in).
pub(crate) async fn scrape(State(state): State<AppState>) -> Result<Response, AppError> {
    let text = state.metrics.render(&state).await?;
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response())
}
