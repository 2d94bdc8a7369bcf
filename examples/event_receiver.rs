//! The account's system receiving events, for the benchmark (bench/events.sh): verifies each request's
//! Standard Webhooks signature with the endpoint's secret, as a real receiver must, and answers 204.
//!
//! `cargo run --release --example event_receiver -- PORT SECRET`; prints the requests received (and
//! how many failed verification) when it gets SIGTERM or Ctrl-C.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

#[derive(Default)]
struct Counts {
    received: AtomicU64,
    forged: AtomicU64,
}

struct Receiver {
    secret: String,
    counts: Counts,
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap_or_default();
    let ok = wxportal::events::signature::verify(
        &r.secret,
        header("webhook-id"),
        timestamp,
        &body,
        header("webhook-signature"),
    );
    r.counts.received.fetch_add(1, Ordering::Relaxed);
    if ok {
        StatusCode::NO_CONTENT
    } else {
        r.counts.forged.fetch_add(1, Ordering::Relaxed);
        StatusCode::BAD_REQUEST
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).expect("PORT").parse().expect("a port");
    let receiver = Arc::new(Receiver {
        secret: args.get(2).expect("SECRET").clone(),
        counts: Counts::default(),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let app = axum::Router::new()
        .fallback(receive)
        .with_state(Arc::clone(&receiver));
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .unwrap();
    eprintln!(
        "received {} requests, {} failed verification",
        receiver.counts.received.load(Ordering::Relaxed),
        receiver.counts.forged.load(Ordering::Relaxed)
    );
}
