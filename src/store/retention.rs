//! Retention: old messages, finished outbox jobs and event deliveries are deleted in small batches, each its own short
//! write, so the pruner never holds the write lock long. Expired sessions and spent authorization states
//! are deleted by the hourly clean-up (see [`Store::connect`]).

use std::time::Duration;

use super::{Store, StoreError, on_pool};
use crate::time::unix_now;

/// What is kept, from `WXPORTAL_KEEP_MESSAGES_DAYS` and `WXPORTAL_KEEP_JOBS_DAYS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Messages (with their replies) received within this many days; `None` keeps every message.
    pub messages_days: Option<u32>,
    /// Finished outbox jobs and event deliveries (sent or given up) within this many days.
    pub jobs_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            messages_days: None,
            jobs_days: 30,
        }
    }
}

/// Rows deleted in one statement.
const BATCH: i64 = 1000;

/// Messages received before `$1`, except those a queued reply still answers.
const OLD_MESSAGES: &str = "DELETE FROM messages WHERE id IN (
    SELECT id FROM messages WHERE received_at < $1
      AND NOT EXISTS (SELECT 1 FROM outbox
                      WHERE outbox.message_id = messages.id AND outbox.state IN ('queued', 'sending'))
    ORDER BY id LIMIT $2)";

/// Jobs sent or given up before `$1`.
const OLD_JOBS: &str = "DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox WHERE state IN ('done', 'failed') AND finished_at < $1
    ORDER BY id LIMIT $2)";

/// Event deliveries done or given up before `$1`.
const OLD_DELIVERIES: &str = "DELETE FROM deliveries WHERE id IN (
    SELECT id FROM deliveries WHERE state IN ('done', 'failed') AND finished_at < $1
    ORDER BY id LIMIT $2)";

/// Events from before `$1` that no delivery needs any more.
const OLD_EVENTS: &str = "DELETE FROM events WHERE id IN (
    SELECT id FROM events WHERE created_at < $1
      AND NOT EXISTS (SELECT 1 FROM deliveries WHERE deliveries.event_id = events.id)
    ORDER BY id LIMIT $2)";

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub messages: u64,
    pub jobs: u64,
    /// Finished event deliveries, and the events none of them needs any more.
    pub deliveries: u64,
}

impl Store {
    /// Deletes what `retention` no longer keeps, batch by batch; how many rows went.
    pub async fn prune(&self, retention: Retention) -> Result<Pruned, StoreError> {
        let now = unix_now();
        let days = |n: u32| now - i64::from(n) * 86_400;
        let jobs = self
            .delete_in_batches(OLD_JOBS, days(retention.jobs_days))
            .await?;
        let deliveries = self
            .delete_in_batches(OLD_DELIVERIES, days(retention.jobs_days))
            .await?
            + self
                .delete_in_batches(OLD_EVENTS, days(retention.jobs_days))
                .await?;
        let messages = match retention.messages_days {
            Some(n) => self.delete_in_batches(OLD_MESSAGES, days(n)).await?,
            None => 0,
        };
        Ok(Pruned {
            messages,
            jobs,
            deliveries,
        })
    }

    async fn delete_in_batches(&self, sql: &'static str, before: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = {
                let _turn = self.write_turn().await;
                on_pool!(self, |pool| sqlx::query(sql)
                    .bind(before)
                    .bind(BATCH)
                    .execute(pool)
                    .await?
                    .rows_affected())
            };
            total += deleted;
            if deleted < BATCH as u64 {
                return Ok(total);
            }
            // Between batches the other writers go first.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Prunes at start and every ten minutes until the store closes.
    pub(crate) async fn prune_regularly(self, retention: Retention) {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            if self.is_closed() {
                return;
            }
            match self.prune(retention).await {
                Ok(pruned) if pruned != Pruned::default() => tracing::info!(
                    messages = pruned.messages,
                    jobs = pruned.jobs,
                    deliveries = pruned.deliveries,
                    "old rows deleted"
                ),
                Ok(_) => {}
                Err(e) if self.is_closed() => {
                    let _ = e;
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "pruning old rows failed"),
            }
        }
    }
}
