//! A closed-loop HTTP/1.1 load generator for the benchmark script (bench/run.sh).
//!
//! `cargo run --release --example loadgen -- SCENARIO URL [CONNECTIONS] [SECONDS]` where SCENARIO is
//! `healthz`, `plain`, `safe`, or `get` (a GET of the URL's path, with `Authorization: Bearer
//! $LOADGEN_BEARER` when set: the HTTP API). Every webhook request is a unique, correctly signed text message (safe:
//! encrypted with a fresh ciphertext and msg_signature), so the server stores each one.
//! With `LOADGEN_RATE=N` the connections send N requests/s in all, evenly, instead of as fast as answers
//! come. Prints one line: scenario, requests/s, p50 and p99 latency, errors and (webhook) how many
//! requests were fresh: a message and signed query never sent before. Reads WXPORTAL_TOKEN,
//! WXPORTAL_APPID and WXPORTAL_ENCODING_AES_KEY.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use wxportal::time::unix_now;
use wxportal::wechat::MessageMode;
use wxportal::wechat::push::Push;
use wxportal::wechat::{AesKey, MessageCrypto};

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    Healthz,
    Plain,
    Safe,
    Get,
}

struct Target {
    scenario: Scenario,
    host: String,
    path: String,
    token: String,
    crypto: Option<MessageCrypto>,
    counter: AtomicU64,
    run_id: u64,
    /// Signed (and encrypted) requests built before the clock starts, so the generator spends the same
    /// effort per request in every scenario: `(uri, body)`.
    prepared: Vec<(String, Bytes)>,
    /// `get`: the bearer token sent, if any.
    bearer: Option<String>,
}

impl Target {
    fn request(&self) -> Request<Full<Bytes>> {
        if self.scenario == Scenario::Healthz {
            return Request::builder()
                .uri("/healthz")
                .header("host", &self.host)
                .body(Full::new(Bytes::new()))
                .unwrap();
        }
        if self.scenario == Scenario::Get {
            let mut request = Request::builder()
                .uri(&self.path)
                .header("host", &self.host);
            if let Some(token) = &self.bearer {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            return request.body(Full::new(Bytes::new())).unwrap();
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed) as usize;
        // Past the prepared pool, requests repeat: still valid, answered as retries.
        let (uri, body) = &self.prepared[n % self.prepared.len()];
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("host", &self.host)
            .header("content-type", "text/xml")
            .body(Full::new(body.clone()))
            .unwrap()
    }

    fn prepare(&self, n: u64) -> (String, Bytes) {
        let push = Push {
            to: "gh_bench".into(),
            from: format!("oBench{:06}", n % 50_000),
            create_time: unix_now(),
            msg_type: "text".into(),
            fields: vec![
                ("Content".into(), format!("benchmark message {n}")),
                ("MsgId".into(), format!("{}{n:010}", self.run_id)),
            ],
        };
        let mode = if self.crypto.is_some() {
            MessageMode::Safe
        } else {
            MessageMode::Plain
        };
        let signed = push.sign(
            &self.token,
            mode,
            self.crypto.as_ref(),
            &unix_now().to_string(),
            // A nonce per message, as WeChat sends: a signed query is good for one message only.
            &format!("{}{n}", self.run_id),
        );
        (signed.url(&self.path), Bytes::from(signed.body))
    }
}

/// `pace`: the time between one connection's requests (an even rate), or none (as fast as answers come).
async fn connection(
    target: Arc<Target>,
    deadline: Instant,
    pace: Option<Duration>,
) -> (Vec<u32>, u64) {
    let mut latencies = Vec::with_capacity(100_000);
    let mut errors = 0;
    let stream = tokio::net::TcpStream::connect(&target.host)
        .await
        .expect("connect");
    stream.set_nodelay(true).unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut ticks = pace.map(|p| {
        let mut t = tokio::time::interval(p);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    while Instant::now() < deadline {
        if let Some(ticks) = &mut ticks {
            ticks.tick().await;
        }
        let request = target.request();
        let started = Instant::now();
        match sender.send_request(request).await {
            Ok(response) => {
                let ok = response.status() == 200;
                let _ = response.into_body().collect().await;
                latencies.push(started.elapsed().as_micros() as u32);
                if !ok {
                    errors += 1;
                }
            }
            Err(_) => {
                errors += 1;
                break;
            }
        }
    }
    (latencies, errors)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = match args.get(1).map(String::as_str) {
        Some("healthz") => Scenario::Healthz,
        Some("plain") => Scenario::Plain,
        Some("safe") => Scenario::Safe,
        Some("get") => Scenario::Get,
        _ => panic!("usage: loadgen healthz|plain|safe|get URL [CONNECTIONS] [SECONDS]"),
    };
    let url = args.get(2).expect("URL").trim_start_matches("http://");
    let (host, path) = url
        .split_once('/')
        .map_or((url, "/wechat".to_owned()), |(h, p)| (h, format!("/{p}")));
    let connections: usize = args.get(3).map_or(64, |c| c.parse().unwrap());
    let seconds: u64 = args.get(4).map_or(10, |s| s.parse().unwrap());
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let crypto = (scenario == Scenario::Safe).then(|| {
        MessageCrypto::new(
            AesKey::from_encoding_aes_key(&env("WXPORTAL_ENCODING_AES_KEY"))
                .expect("WXPORTAL_ENCODING_AES_KEY"),
            env("WXPORTAL_APPID"),
        )
    });
    let mut target = Target {
        scenario,
        host: host.to_owned(),
        path,
        token: env("WXPORTAL_TOKEN"),
        crypto,
        counter: AtomicU64::new(0),
        // Apart from other runs, and from another generator started in the same second (two instances
        // measured at once): message ids and nonces must not meet.
        run_id: ((unix_now() % 1000) as u64 * 1000 + u64::from(std::process::id() % 1000)) * 10
            + scenario as u64,
        prepared: Vec::new(),
        bearer: std::env::var("LOADGEN_BEARER").ok(),
    };
    if matches!(scenario, Scenario::Plain | Scenario::Safe) {
        // Enough unique messages for 50,000 requests/s.
        let pool = seconds * 50_000;
        target.prepared = (0..pool).map(|n| target.prepare(n)).collect();
    }
    let target = Arc::new(target);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    // LOADGEN_RATE: requests per second in all, spread evenly over the connections (open pacing).
    let pace = std::env::var("LOADGEN_RATE")
        .ok()
        .and_then(|r| r.parse::<f64>().ok())
        .filter(|r| *r > 0.0)
        .map(|rate| Duration::from_secs_f64(connections as f64 / rate));
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(connection(target.clone(), deadline, pace)))
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let get = format!("GET {}", target.path.split('?').next().unwrap_or_default());
    let name = match scenario {
        Scenario::Healthz => "GET /healthz",
        Scenario::Plain => "POST /wechat plaintext",
        Scenario::Safe => "POST /wechat safe mode",
        Scenario::Get => get.as_str(),
    };
    // Webhook requests past the prepared pool repeat earlier ones (answered as retries): say how many
    // were new messages with their own signed query.
    let fresh = if target.prepared.is_empty() {
        String::new()
    } else {
        format!(
            "   fresh {}",
            (all.len() as u64 + errors).min(target.prepared.len() as u64)
        )
    };
    println!(
        "{name:<24} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   requests {:>8}   errors {errors}{fresh}",
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        all.len()
    );
}
