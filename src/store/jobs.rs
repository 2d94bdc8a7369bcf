//! The outbox: work for WeChat's API that must not be lost, claimed by one process at a time.

use sqlx::FromRow;

use super::{Store, StoreError, on_pool};
use crate::time::unix_now;

/// The kinds of work the outbox does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum JobKind {
    /// A reply after the 5-second window, as a customer-service message.
    Reply,
    /// A new follower's info (`user/info`).
    UserInfo,
    /// An operator's customer-service message (`payload`), written in the admin area.
    Custom,
    /// A campaign's template message to one follower.
    Template,
}

impl JobKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::UserInfo => "user_info",
            Self::Custom => "custom",
            Self::Template => "template",
        }
    }
}

/// Where a job is: waiting, claimed by a process, finished, given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Sending,
    Done,
    Failed,
    /// Its campaign was cancelled before it was sent.
    Cancelled,
}

impl JobState {
    pub const ALL: [Self; 5] = [
        Self::Queued,
        Self::Sending,
        Self::Done,
        Self::Failed,
        Self::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A job taken from the outbox.
#[derive(Debug, Clone, FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: JobKind,
    pub openid: String,
    pub message_id: Option<i64>,
    pub state: JobState,
    pub attempts: i64,
    pub due_at: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub last_error: Option<String>,
    pub sent: Option<String>,
    /// What a [`JobKind::Custom`] job sends.
    pub payload: Option<String>,
    /// The operator who wrote a [`JobKind::Custom`] job.
    pub author: Option<String>,
    /// The campaign of a [`JobKind::Template`] job.
    pub campaign_id: Option<i64>,
    /// WeChat's msgid for a template message sent.
    pub msgid: Option<String>,
    /// The TEMPLATESENDJOBFINISH status WeChat reported for it.
    pub delivery: Option<String>,
}

/// Due time of a paused campaign's jobs: never, until it is resumed.
pub(crate) const NEVER: i64 = 9_000_000_000_000_000;

/// How many jobs wait, failed and were done in the last day.
#[derive(Debug, Clone, Default, FromRow)]
pub struct OutboxCounts {
    pub pending: i64,
    pub failed: i64,
    pub done_today: i64,
}

impl Store {
    /// Claims the next due job for `claim_secs`: a queued one whose time has come, or one whose claim
    /// lapsed (its process stopped mid-attempt). The second element says which.
    pub(crate) async fn claim_job(
        &self,
        owner: &str,
        claim_secs: i64,
    ) -> Result<Option<(Job, bool)>, StoreError> {
        let _turn = self.write_turn().await;
        loop {
            let now = unix_now();
            let candidate: Option<(i64, JobState, i64)> = on_pool!(self, |pool| sqlx::query_as(
                "SELECT id, state, claimed_until FROM outbox
                 WHERE state IN ('queued', 'sending') AND due_at <= $1
                   AND (state = 'queued' OR claimed_until < $2)
                 ORDER BY due_at, id LIMIT 1",
            )
            .bind(now)
            .bind(now)
            .fetch_optional(pool)
            .await?);
            let Some((id, state, claimed_until)) = candidate else {
                return Ok(None);
            };
            // Only if nobody claimed it in between; otherwise look again.
            let job: Option<Job> = on_pool!(self, |pool| sqlx::query_as(
                "UPDATE outbox SET state = 'sending', claimed_by = $1, claimed_until = $2,
                     attempts = attempts + 1
                 WHERE id = $3 AND state = $4 AND claimed_until = $5
                 RETURNING *",
            )
            .bind(owner)
            .bind(now + claim_secs)
            .bind(id)
            .bind(state)
            .bind(claimed_until)
            .fetch_optional(pool)
            .await?);
            if let Some(job) = job {
                return Ok(Some((job, state == JobState::Sending)));
            }
        }
    }

    /// When the next queued job is due, if any.
    pub(crate) async fn next_job_due(&self) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_scalar(
            "SELECT min(CASE WHEN state = 'queued' OR due_at > claimed_until THEN due_at ELSE claimed_until + 1 END)
             FROM outbox WHERE state IN ('queued', 'sending')",
        )
        .fetch_one(pool)
        .await?
        }))
    }

    /// The job is done; `sent` is what went to WeChat, `msgid` what WeChat numbered it.
    pub(crate) async fn finish_job(
        &self,
        job: &Job,
        sent: Option<&str>,
        msgid: Option<&str>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE outbox SET state = 'done', finished_at = $1, sent = $2, msgid = $3, claimed_by = NULL,
                 claimed_until = 0 WHERE id = $4",
        )
        .bind(unix_now())
        .bind(sent)
        .bind(msgid)
        .bind(job.id)
        .execute(pool)
        .await?
        .rows_affected()
        });
        self.campaign_maybe_done(job.campaign_id).await
    }

    /// Marks a running campaign done once none of its jobs waits or is being sent.
    async fn campaign_maybe_done(&self, campaign: Option<i64>) -> Result<(), StoreError> {
        let Some(campaign) = campaign else {
            return Ok(());
        };
        on_pool!(self, |pool| sqlx::query(
            "UPDATE campaigns SET state = 'done', finished_at = $1
             WHERE id = $2 AND state = 'running' AND NOT EXISTS
                 (SELECT 1 FROM outbox WHERE campaign_id = $2 AND state IN ('queued', 'sending'))",
        )
        .bind(unix_now())
        .bind(campaign)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }

    /// The attempt failed for a passing reason: try again at `due_at` (a paused campaign's job waits
    /// for the resume; a cancelled campaign's is cancelled).
    pub(crate) async fn retry_job(
        &self,
        id: i64,
        due_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE outbox SET
                 state = CASE WHEN (SELECT state FROM campaigns WHERE id = outbox.campaign_id) = 'cancelled'
                     THEN 'cancelled' ELSE 'queued' END,
                 due_at = CASE WHEN (SELECT state FROM campaigns WHERE id = outbox.campaign_id) = 'paused'
                     THEN $4 ELSE $1 END,
                 last_error = $2, claimed_by = NULL, claimed_until = 0
             WHERE id = $3",
        )
        .bind(due_at)
        .bind(error)
        .bind(id)
        .bind(NEVER)
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// The job cannot succeed: it stays, failed, with the reason, for the operator.
    pub(crate) async fn fail_job(
        &self,
        job: &Job,
        error: &str,
        sent: Option<&str>,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| sqlx::query(
            "UPDATE outbox SET state = 'failed', finished_at = $1, last_error = $2, sent = $3,
                 claimed_by = NULL, claimed_until = 0 WHERE id = $4",
        )
        .bind(unix_now())
        .bind(error)
        .bind(sent)
        .bind(job.id)
        .execute(pool)
        .await?
        .rows_affected());
        self.campaign_maybe_done(job.campaign_id).await
    }

    /// The newest jobs first, optionally only those in `state`.
    pub async fn list_jobs(
        &self,
        state: Option<JobState>,
        limit: i64,
    ) -> Result<Vec<Job>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM outbox WHERE $1 IS NULL OR state = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(state)
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }

    /// Queues an operator's customer-service message to `openid`; returns the job's id.
    pub(crate) async fn queue_custom(
        &self,
        openid: &str,
        payload: &str,
        author: &str,
    ) -> Result<i64, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO outbox (kind, openid, due_at, created_at, payload, author)
             VALUES ('custom', $1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(openid)
        .bind(now)
        .bind(now)
        .bind(payload)
        .bind(author)
        .fetch_one(pool)
        .await?))
    }

    /// The newest `limit` messages sent to `openid` through the outbox (late replies and operators'
    /// answers), newest first.
    pub(crate) async fn messages_sent_to(
        &self,
        openid: &str,
        limit: i64,
    ) -> Result<Vec<Job>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM outbox WHERE openid = $1 AND kind IN ('reply', 'custom')
             ORDER BY id DESC LIMIT $2",
        )
        .bind(openid)
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }

    /// The jobs that answer one message.
    pub(crate) async fn jobs_of_message(&self, message_id: i64) -> Result<Vec<Job>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM outbox WHERE message_id = $1 ORDER BY id"
        )
        .bind(message_id)
        .fetch_all(pool)
        .await?))
    }

    pub(crate) async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT
                 (SELECT count(*) FROM outbox WHERE state IN ('queued', 'sending')) AS pending,
                 (SELECT count(*) FROM outbox WHERE state = 'failed') AS failed,
                 (SELECT count(*) FROM outbox WHERE state = 'done' AND finished_at >= $1) AS done_today",
        )
        .bind(unix_now() - 86_400)
        .fetch_one(pool)
        .await?
        }))
    }
}
