//! What a stranger on the open Internet can and cannot do: cookie-less visits write nothing, per-client
//! limits answer 429 and recover, operator sign-in can be neither flooded nor locked from elsewhere.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sqlx::{Connection, SqliteConnection};

use crate::admin::{sign_in_with, with_admin};
use crate::helpers::*;
use crate::mock::{APPSECRET, MockWeChat, Scripted};

mod anonymous;
mod demo;
mod edges;
mod sign_in;
mod webhook;

pub(super) const PASSWORD: &str = "correct horse battery";
pub(super) const EXCHANGE: &str = "/sns/oauth2/access_token";

/// Every table's row count.
pub(super) async fn row_counts(app: &TestApp) -> Vec<(String, i64)> {
    let mut db = SqliteConnection::connect(&app.database_url())
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let mut counts = Vec::new();
    for table in tables {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{table}\""
        )))
        .fetch_one(&mut db)
        .await
        .unwrap();
        counts.push((table, n));
    }
    counts
}

pub(super) async fn portal_with(vars: &[(&str, &str)]) -> (TestApp, MockWeChat) {
    let mock = MockWeChat::start().await;
    let mut all = vec![
        ("WXPORTAL_APPSECRET", APPSECRET),
        ("WXPORTAL_WECHAT_API_URL", mock.base.as_str()),
        ("WXPORTAL_WECHAT_OPEN_URL", "http://open.wechat.test"),
    ];
    all.extend_from_slice(vars);
    (TestApp::spawn(&all).await, mock)
}
