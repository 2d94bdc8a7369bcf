//! The whole URL map: each feature's router, the operational probes and the shared layers.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::app::AppState;
use crate::{admin, jssdk, oauth, pages, sessions, simulator, webhook};

/// The largest request body any route reads.
pub const MAX_BODY: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
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
        .merge(pages::router())
        .merge(oauth::router(&state))
        .merge(admin::router(&state));
    if state.demo {
        pages = pages.merge(simulator::router());
    }
    let pages = pages
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::render_error_pages,
        ))
        .layer(sessions::layer(&state.store, &state.keys, &state.config));
    let app = Router::new()
        .merge(webhook::router())
        .merge(jssdk::router(&state))
        .merge(pages);
    // Under https, browsers are told to never try plain http again.
    let hsts = state.config.public_url.starts_with("https://").then(|| {
        SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        )
    });
    app.route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
        // Every body is small: WeChat's messages, forms. Larger ones are refused before they are read.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(tower::util::option_layer(hsts))
        // Every response: no sniffing, no framing, no referrer leaking a code or state, scripts only from
        // this site and WeChat's JS-SDK (the pages have none inline).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data: https: http:; style-src 'self'; script-src 'self' https://res.wx.qq.com; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
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
