//! The stand-in WeChat API on a port of its own, for benchmarks that need WeChat to answer (the
//! template-message benchmark, bench/templates.sh).
//!
//! `cargo run --release --example mock_wechat -- APPID APPSECRET PORT` serves until killed. Every
//! OpenID is a follower. Every second it prints how many template messages it has accepted.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use wxportal::demo::wechat::{FakeWeChat, Follower};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, appid, secret, port] = &args[..] else {
        eprintln!("usage: mock_wechat APPID APPSECRET PORT");
        std::process::exit(2);
    };
    let wechat = FakeWeChat::new(
        appid,
        Some(secret),
        Arc::new(|_: &str| {
            Some(Follower {
                unionid: None,
                profile: json!({"nickname": "bench"}),
                info: json!({"subscribe": 1}),
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .expect("the port is free");
    let router = wechat.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        eprintln!(
            "template messages accepted: {}",
            wechat.calls("/cgi-bin/message/template/send")
        );
    }
}
