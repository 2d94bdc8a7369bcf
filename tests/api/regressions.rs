//! Every input a fuzz target ever failed on (`fuzz/regressions/TARGET/`), replayed through the same code.

use std::path::PathBuf;

use crate::helpers::TestApp;

const TOKEN: &str = "fixtureToken42";

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
                .collect()
        })
        .unwrap_or_default();
    inputs.sort();
    inputs
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_inputs_that_once_failed_get_a_4xx_or_an_answer() {
    let app = TestApp::spawn(&[
        ("WXPORTAL_TOKEN", TOKEN),
        ("WXPORTAL_APPID", "wx5823bf96d3bd56c7"),
        (
            "WXPORTAL_ENCODING_AES_KEY",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        ),
        ("WXPORTAL_MESSAGE_MODE", "compat"),
        ("WXPORTAL_MAX_CLOCK_SKEW", "0"),
    ])
    .await;
    let cases = inputs("webhook");
    assert!(!cases.is_empty());
    for (name, data) in cases {
        let text = String::from_utf8_lossy(&data);
        let (query, body) = text.split_once('\n').unwrap_or((&text, ""));
        let query = if data[0] % 2 == 1 {
            wxportal::wechat::push::resign_query(TOKEN, query, body)
        } else {
            query.to_owned()
        };
        // The query as the bytes a client sends: anything outside a URI's characters percent-encoded.
        let query: String = query
            .bytes()
            .map(|b| {
                if b.is_ascii_graphic() && b != b'#' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let response = app
            .client
            .post(format!("{}/wechat?{query}", app.base))
            .header("content-type", "text/xml")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer = response.text().await.unwrap();
        assert!(!status.is_server_error(), "{name}: {status} {answer}");
    }
}
