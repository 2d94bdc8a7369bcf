//! `/admin`: the figures an operator checks first, and 30 days of messages as a server-drawn SVG chart.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::frame::{Frame, Nav};
use crate::store::{OutboxCounts, Stats};
use crate::time::beijing_time;
use crate::time::unix_now;
use crate::upstream::token::Kind;
use crate::web::error::AppError;
use crate::web::state::AppState;
use crate::web::ui::render;

/// The chart's drawing area, in SVG user units (it scales to the page's width).
const CHART_WIDTH: i64 = 600;
const CHART_HEIGHT: i64 = 140;
const BAR_GAP: i64 = 4;

/// One day's bar.
struct Bar {
    x: i64,
    y: i64,
    width: i64,
    height: i64,
    label: String,
    count: i64,
}

/// The account's standing with WeChat's API: its token, today's quota use, and the outbox.
struct ApiStatus {
    configured: bool,
    /// "fetched 12 min ago, expires in 108 min", or why there is none.
    token: String,
    fetches_today: i64,
    /// The last failed fetch (a quota reached, a wrong secret…), until one succeeds.
    last_error: Option<String>,
    outbox: OutboxCounts,
}

/// Minutes, for people.
fn minutes(secs: i64) -> i64 {
    (secs.max(0) + 59) / 60
}

async fn api_status(app: &AppState, now: i64) -> Result<ApiStatus, AppError> {
    let row = app.store.credential(Kind::AccessToken.as_str()).await?;
    let configured = app.account.credentials.configured();
    let token = match (&row.value, configured) {
        (_, false) => "未配置 AppSecret：不会获取 · WXPORTAL_APPSECRET is not set".to_owned(),
        (None, true) => {
            "尚未获取（首次需要时获取）· not fetched yet (fetched when first needed)".to_owned()
        }
        (Some(_), true) if row.expires_at == -1 => {
            "被微信拒绝，下次使用时重新获取 · refused by WeChat; renewed on next use".to_owned()
        }
        (Some(_), true) if row.expires_at <= now => format!(
            "{} 分钟前获取，已过期 · fetched {} min ago, expired",
            minutes(now - row.fetched_at),
            minutes(now - row.fetched_at)
        ),
        (Some(_), true) => format!(
            "{} 分钟前获取，{} 分钟后过期 · fetched {} min ago, expires in {} min",
            minutes(now - row.fetched_at),
            minutes(row.expires_at - now),
            minutes(now - row.fetched_at),
            minutes(row.expires_at - now),
        ),
    };
    Ok(ApiStatus {
        configured,
        token,
        fetches_today: app
            .store
            .credential_fetches_today(Kind::AccessToken.as_str())
            .await?,
        last_error: row.last_error.map(|e| {
            format!(
                "{} · {e}",
                row.last_error_at.map(beijing_time).unwrap_or_default()
            )
        }),
        outbox: app.store.outbox_counts().await?,
    })
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardTemplate {
    layout: crate::web::ui::Layout,
    nav: Nav,
    stats: Stats,
    api: ApiStatus,
    bars: Vec<Bar>,
    peak: i64,
    first_day: String,
    last_day: String,
    chart_width: i64,
    chart_height: i64,
    /// What the pruner keeps, in words.
    kept: String,
    /// Event endpoints switched off (after failing for a day, or by an operator).
    endpoints_off: Vec<crate::store::Endpoint>,
}

fn bars(per_day: &[(i64, i64)]) -> (Vec<Bar>, i64) {
    let peak = per_day.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let slot = CHART_WIDTH / per_day.len().max(1) as i64;
    let bars = per_day
        .iter()
        .enumerate()
        .map(|(i, &(day, count))| {
            // A day with messages shows at least a sliver.
            let height = if count == 0 {
                0
            } else {
                (count * CHART_HEIGHT / peak).max(2)
            };
            Bar {
                x: i as i64 * slot,
                y: CHART_HEIGHT - height,
                width: slot - BAR_GAP,
                height,
                label: crate::time::beijing_date(day),
                count,
            }
        })
        .collect();
    (bars, peak)
}

pub async fn show(State(app): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    let now = unix_now();
    let stats = app.store.stats(now).await?;
    let api = api_status(&app, now).await?;
    let (bars, peak) = bars(&stats.per_day);
    render(&DashboardTemplate {
        api,
        layout: frame.layout,
        first_day: bars.first().map(|b| b.label.clone()).unwrap_or_default(),
        last_day: bars.last().map(|b| b.label.clone()).unwrap_or_default(),
        nav: frame.nav,
        stats,
        bars,
        peak,
        chart_width: CHART_WIDTH,
        chart_height: CHART_HEIGHT,
        kept: kept(app.config.retention),
        endpoints_off: app.store.failed_endpoints().await?,
    })
}

fn kept(retention: crate::store::Retention) -> String {
    let messages = retention.messages_days.map_or_else(
        || "消息永久保留 · messages kept forever".to_owned(),
        |d| format!("消息保留 {d} 天 · messages kept {d} days"),
    );
    format!(
        "{messages} · 已完成的队列任务保留 {jobs} 天 · finished jobs kept {jobs} days",
        jobs = retention.jobs_days
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_day() {
        let (bars, peak) = bars(&[(20_000, 0), (20_001, 5), (20_002, 10)]);
        assert_eq!(peak, 10);
        assert_eq!(bars[0].height, 0);
        assert_eq!(bars[1].height, CHART_HEIGHT / 2);
        assert_eq!(bars[2].height, CHART_HEIGHT);
        assert_eq!(bars[2].y, 0);
        assert!(bars[1].x < bars[2].x);
        assert_eq!(bars[0].label, "2024-10-04");
    }
}
