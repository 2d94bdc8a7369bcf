//! The dashboard's figures: followers and messages, today and over 30 days.

use super::{Store, StoreError, on_pool};
use crate::time::{BEIJING_OFFSET, beijing_day};

/// The dashboard's figures.
#[derive(Debug, Clone)]
pub struct Stats {
    pub users: i64,
    pub subscribed: i64,
    pub authorized: i64,
    pub messages_today: i64,
    pub messages_30_days: i64,
    /// Messages per day over the last 30 days, oldest first (day = days since the epoch, Beijing time).
    pub per_day: Vec<(i64, i64)>,
}

impl Store {
    /// The dashboard's counts and the 30-day message chart.
    pub(crate) async fn stats(&self, now: i64) -> Result<Stats, StoreError> {
        let (users, subscribed, authorized): (i64, i64, i64) =
            on_pool!(self, |pool| sqlx::query_as(
                "SELECT count(*), count(CASE WHEN subscribed THEN 1 END), count(scope) FROM users",
            )
            .fetch_one(pool)
            .await?);
        let today = beijing_day(now);
        let first_day = today - 29;
        let since = first_day * 86_400 - BEIJING_OFFSET;
        let counted: Vec<(i64, i64)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT (received_at + $1) / 86400 AS day, count(*) FROM messages
             WHERE received_at >= $2 GROUP BY day",
        )
        .bind(BEIJING_OFFSET)
        .bind(since)
        .fetch_all(pool)
        .await?);
        let per_day: Vec<(i64, i64)> = (first_day..=today)
            .map(|d| {
                let n = counted.iter().find(|(day, _)| *day == d).map_or(0, |c| c.1);
                (d, n)
            })
            .collect();
        Ok(Stats {
            users,
            subscribed,
            authorized,
            messages_today: per_day.last().map_or(0, |d| d.1),
            messages_30_days: per_day.iter().map(|d| d.1).sum(),
            per_day,
        })
    }
}
