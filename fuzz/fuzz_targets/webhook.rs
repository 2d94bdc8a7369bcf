//! The whole webhook request through the real router, in process, on a temporary database: any query
//! string and body get an answer (never a 5xx, a panic or a hang).
//!
//! Input: `QUERY\nBODY`. When the first byte of the input is odd, the query's `signature` (and, with
//! `encrypt_type=aes`, its `msg_signature` over the body's `<Encrypt>`) are replaced by correct ones,
//! so that mutated bodies reach the parser, the decryption and the store, not only the signature check.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;
use wxportal::app::App;
use wxportal::config::Config;

/// The test fixtures' account, so that their signed requests seed the corpus.
const TOKEN: &str = "fixtureToken42";

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let url = format!("sqlite://{}", dir.path().join("fuzz.db").display());
        let router = runtime.block_on(async {
            let config = Config::from_lookup(|name| {
                Some(
                    match name {
                        "WXPORTAL_TOKEN" => TOKEN,
                        "WXPORTAL_APPID" => "wx5823bf96d3bd56c7",
                        "WXPORTAL_ENCODING_AES_KEY" => {
                            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
                        }
                        "WXPORTAL_MESSAGE_MODE" => "compat",
                        "WXPORTAL_MAX_CLOCK_SKEW" => "0",
                        "WXPORTAL_SQLITE_SYNCHRONOUS" => "normal",
                        "WXPORTAL_BIND" => "127.0.0.1:0",
                        "WXPORTAL_DATABASE_URL" => url.as_str(),
                        _ => return None,
                    }
                    .to_owned(),
                )
            })
            .expect("the fuzz configuration");
            let app = App::build(config).await.expect("the app starts");
            wxportal::web::router(app.state().clone(), None)
        });
        Harness {
            runtime,
            router,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, _)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let (query, body) = text.split_once('\n').unwrap_or((&text, ""));
    let query = if first % 2 == 1 {
        wxportal::wechat::push::resign_query(TOKEN, query, body)
    } else {
        query.to_owned()
    };
    let Ok(request) = Request::post(format!("/wechat?{query}"))
        .header("content-type", "text/xml")
        .body(Body::from(body.to_owned()))
    else {
        return;
    };
    let h = harness();
    let status = h.runtime.block_on(async {
        h.router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible")
            .status()
    });
    // A failure of ours (5xx) would be a bug: every bad input is the caller's 4xx.
    assert!(!status.is_server_error(), "{status} for {query:?}");
});
