//! The yardstick of the webhook benchmark (bench/run.sh): a bare axum server on the same runtime, that
//! answers every `POST /wechat` with `success` (no signature check, no parsing, nothing stored) and
//! `GET /healthz` with `ok`. wxportal's webhook rates are quoted as a share of this one's in the same run.
//!
//! `cargo run --release --example bare_webhook -- ADDRESS`

use axum::Router;
use axum::routing::{get, post};

#[tokio::main]
async fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18189".into());
    let app = Router::new()
        .route(
            "/wechat",
            post(|_body: axum::body::Bytes| async { "success" }),
        )
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {address}: {e}"));
    axum::serve(listener, app).await.expect("the server runs");
}
