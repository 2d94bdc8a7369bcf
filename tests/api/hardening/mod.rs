//! What a stranger on the open Internet can and cannot do: cookie-less visits write nothing, per-client
//! limits answer 429 and recover, operator sign-in can be neither flooded nor locked from elsewhere.

use std::time::{Duration, Instant};

use futures_util::StreamExt;

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
    let mut db = app.raw_db().await;
    let mut counts = Vec::new();
    for table in db.tables().await {
        let n = db
            .number(&format!("SELECT count(*) FROM \"{table}\""))
            .await;
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
