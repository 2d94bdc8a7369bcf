//! Everything that speaks HTTP: the URL map (each feature's router, the operational probes and the
//! shared layers), the state every handler reaches, and the features themselves.

/// The operator's area under `/admin`.
pub mod admin;
/// The HTTP API under `/api/v1`, for the account's own systems.
pub mod api;
/// The one error type and its HTTP responses.
pub mod error;
/// `/jssdk/config`: the JS-SDK signature for our own pages.
pub mod jssdk;
/// The keys derived from the server secret.
pub mod keys;
/// Who the client is, and per-client request limits.
pub mod limits;
/// `/metrics` in Prometheus's text format.
pub mod metrics;
/// The OAuth `state`: signed, expiring, bound to where the follower goes next.
pub mod oauth_state;
/// The OpenID Connect provider: discovery, keys, authorization, tokens, userinfo, logout.
pub mod oidc;
/// The follower's pages and web authorization.
pub mod portal;
/// The HTTP server: header timeout, connection cap, graceful shutdown.
pub mod server;
/// Sessions and the CSRF token every form carries.
pub mod sessions;
/// What every handler can reach.
pub mod state;
/// Page layout, rendering and the drawn error pages.
pub mod ui;
/// The `/wechat` endpoint.
pub mod webhook;

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use state::AppState;

/// Request ids: random UUIDs (version 4) from the thread's generator, where tower-http's
/// `MakeRequestUuid` asked the kernel for randomness (a system call) on every request.
#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = [0; uuid::fmt::Hyphenated::LENGTH];
        let text = id.hyphenated().encode_lower(&mut text);
        Some(RequestId::new(HeaderValue::from_str(text).ok()?))
    }
}

/// The largest request body any route reads.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The URL map; `extra` adds pages (the demo's simulator) under the pages' layers.
pub fn router(state: AppState, extra: Option<Router<AppState>>) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<_>| {
            let id = req
                .extensions()
                .get::<RequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .unwrap_or_default();
            // The path only: query strings carry signatures and OpenIDs.
            tracing::info_span!("request", id, method = %req.method(), path = req.uri().path())
        })
        .on_request(())
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(tower_http::LatencyUnit::Micros),
        );
    // Pages get sessions and drawn error pages; the webhook and the probes need neither and skip both.
    let mut pages = Router::new()
        .merge(portal::router())
        .merge(portal::oauth::router(&state))
        .merge(admin::router(&state))
        .merge(oidc::pages(&state));
    if let Some(extra) = extra {
        pages = pages.merge(extra);
    }
    // Each `Router::layer` wraps every route in a box of its own, and a request clones the boxes of its
    // route: the layers of a level go in as one stack.
    let pages = pages.layer(
        ServiceBuilder::new()
            .layer(sessions::layer(&state.store, &state.keys, &state.config))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                ui::render_error_pages,
            )),
    );
    let app = Router::new()
        .merge(webhook::router(&state.config))
        .merge(jssdk::router(&state))
        .merge(oidc::api())
        .merge(api::router())
        .merge(pages);
    // Under https, browsers are told to never try plain http again.
    let hsts = state.config.is_https().then(|| {
        SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        )
    });
    let app = if state.config.metrics {
        app.route("/metrics", get(metrics::scrape))
    } else {
        app
    };
    let app = app
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        // Every routed request is counted and timed, by the route's pattern (never its path: OpenIDs).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ))
        .with_state(state);
    // Outermost first.
    app.layer(
        ServiceBuilder::new()
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_secs(30),
            ))
            // The timeout's own answer needs a body type that can be empty.
            .map_response(IntoResponse::into_response)
            .layer(SetRequestIdLayer::x_request_id(NewRequestId))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(trace)
            // Every response: no sniffing, no framing, no referrer leaking a code or state, scripts only
            // from this site and WeChat's JS-SDK (the pages have none inline).
            .layer(SetResponseHeaderLayer::if_not_present(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_str(&content_security_policy(""))
                    .expect("the policy is a valid header value"),
            ))
            // Every body is small: WeChat's messages, forms. Larger ones are refused before they are read.
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
            .option_layer(hsts),
    )
}

/// Every page's Content-Security-Policy; `form_targets` adds origins its forms may lead to (a form
/// whose answer redirects to an app: browsers check `form-action` on the redirect too).
pub(crate) fn content_security_policy(form_targets: &str) -> String {
    let extra = if form_targets.is_empty() {
        String::new()
    } else {
        format!(" {form_targets}")
    };
    format!(
        "default-src 'self'; img-src 'self' data: https: http:; style-src 'self'; script-src 'self' https://res.wx.qq.com; frame-ancestors 'none'; base-uri 'none'; form-action 'self'{extra}"
    )
}

/// Liveness: the process answers. No I/O.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}
