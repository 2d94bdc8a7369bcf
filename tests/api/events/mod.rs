//! Event webhooks out: a receiving test server on loopback records what wxportal posts to it; each test
//! checks what arrived (once, signed, in order) when the receiver answers, fails, hangs and recovers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;

use crate::helpers::*;

mod delivery;
mod manage;

/// What the receiver does with a request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Holds the request this long before answering 200. Recorded on arrival as not accepted: the
    /// sender is expected to give up first (and hyper drops the handler when it does).
    Hang(Duration),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
    pub json: Value,
    /// Whether the receiver answered 2xx.
    pub accepted: bool,
}

impl Received {
    /// Whether `secret` signed it, checked the way a receiver would: HMAC-SHA256 over
    /// `id.timestamp.body`, keyed with the secret's base64 part, compared with each `v1` signature.
    pub fn signed_by(&self, secret: &str) -> bool {
        use base64::Engine;
        use base64::engine::general_purpose::STANDARD;
        use hmac::{Hmac, KeyInit, Mac};
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.{}", self.id, self.timestamp, self.body).as_bytes());
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        self.signature.split(' ').any(|s| s == expected)
    }

    pub fn event_type(&self) -> &str {
        self.json["type"].as_str().unwrap()
    }
}

#[derive(Default)]
struct Inner {
    script: Mutex<VecDeque<Answer>>,
    received: Mutex<Vec<Received>>,
}

/// The account's system receiving events: answers 200 unless scripted otherwise.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

async fn receive(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    let answer = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Status(200));
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "application/json");
    inner.received.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap(),
        signature: header("webhook-signature"),
        json: serde_json::from_str(&body).unwrap(),
        body,
        accepted: matches!(answer, Answer::Status(200..300)),
    });
    let status = match answer {
        Answer::Status(s) => s,
        Answer::Hang(d) => {
            tokio::time::sleep(d).await;
            200
        }
    };
    (StatusCode::from_u16(status).unwrap(), "thanks")
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/wechat", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .route("/hooks/wechat", axum::routing::post(receive))
            .with_state(Arc::clone(&inner));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, inner }
    }

    /// The next requests get these answers, in order; then 200 again.
    pub fn script(&self, answers: &[Answer]) {
        self.inner.script.lock().unwrap().extend(answers);
    }

    /// Answers 200 from now on.
    pub fn recover(&self) {
        self.inner.script.lock().unwrap().clear();
    }

    /// Every request so far, in the order they arrived.
    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.accepted).collect()
    }
}

/// Registers `url` for `events` with the command line (as an operator would, beside the running
/// server); returns the endpoint's id and secret. A running server picks it up within two seconds.
pub fn add_endpoint(db: &TestDb, url: &str, events: &str) -> (i64, String) {
    let (ok, out) = wxportal_cli(&["endpoint", "add", url, "--events", events], &db.url);
    assert!(ok, "{out}");
    let added: Value = serde_json::from_str(&out).unwrap();
    (
        added["id"].as_i64().unwrap(),
        added["secret"].as_str().unwrap().to_owned(),
    )
}

/// Waits for running servers to reread the endpoints.
pub async fn picked_up() {
    tokio::time::sleep(wxportal::events::WATCH_INTERVAL + Duration::from_millis(500)).await;
}
