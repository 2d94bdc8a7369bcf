//! `/admin`: the figures an operator checks first, and 30 days of messages as a server-drawn SVG chart.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::Nav;
use crate::app::AppState;
use crate::error::AppError;
use crate::pages::render;
use crate::store::{Stats, unix_now};

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

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardTemplate {
    layout: crate::pages::Layout,
    nav: Nav,
    stats: Stats,
    bars: Vec<Bar>,
    peak: i64,
    first_day: String,
    last_day: String,
    chart_width: i64,
    chart_height: i64,
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01).
fn date_of(day: i64) -> String {
    crate::pages::beijing_time(day * 86_400 - 8 * 3600)[..10].to_owned()
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
                label: date_of(day),
                count,
            }
        })
        .collect();
    (bars, peak)
}

pub async fn show(State(app): State<AppState>, nav: Nav) -> Result<Response, AppError> {
    let stats = app.store.stats(unix_now()).await?;
    let (bars, peak) = bars(&stats.per_day);
    render(&DashboardTemplate {
        layout: nav.layout.clone(),
        first_day: bars.first().map(|b| b.label.clone()).unwrap_or_default(),
        last_day: bars.last().map(|b| b.label.clone()).unwrap_or_default(),
        nav,
        stats,
        bars,
        peak,
        chart_width: CHART_WIDTH,
        chart_height: CHART_HEIGHT,
    })
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
