//! The outbox: work for WeChat's API that must not be lost, claimed by one process at a time.

use sqlx::{FromRow, QueryBuilder};

use super::writer::Op;
use super::{Once, RecordOnce, Store, StoreError, on_pool, per_backend, stored_as_text};
use crate::time::unix_now;

/// The kinds of work the outbox does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
stored_as_text!(JobKind { Reply = "reply", UserInfo = "user_info", Custom = "custom", Template = "template" });

/// Where a job is: waiting, claimed by a process, finished, given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Sending,
    Done,
    Failed,
    /// Its campaign was cancelled before it was sent.
    Cancelled,
}
stored_as_text!(JobState { Queued = "queued", Sending = "sending", Done = "done", Failed = "failed", Cancelled = "cancelled" });

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

/// What became of an attempt at a job.
#[derive(Debug, Clone)]
pub(crate) enum Attempt {
    /// The job is done; `sent` is what went to WeChat, `msgid` what WeChat numbered it.
    Done {
        id: i64,
        sent: Option<String>,
        msgid: Option<String>,
    },
    /// It failed for a passing reason: try again at `due_at` (a paused campaign's job waits for the
    /// resume; a cancelled campaign's is cancelled).
    Retry { id: i64, due_at: i64, error: String },
    /// It cannot succeed: it stays, failed, with the reason, for the operator.
    Failed {
        id: i64,
        error: String,
        sent: Option<String>,
    },
}

per_backend! {
pub(crate) async fn record_attempt(
    conn: &mut <Db as sqlx::Database>::Connection,
    attempt: &Attempt,
) -> Result<(), sqlx::Error> {
    let now = unix_now();
    let query = match attempt {
        Attempt::Done { id, sent, msgid } => sqlx::query::<Db>(
            "UPDATE outbox SET state = 'done', finished_at = $1, sent = $2, msgid = $3, claimed_by = NULL,
                 claimed_until = 0 WHERE id = $4",
        )
        .bind(now)
        .bind(sent)
        .bind(msgid)
        .bind(id),
        Attempt::Retry { id, due_at, error } => sqlx::query::<Db>(
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
        .bind(NEVER),
        Attempt::Failed { id, error, sent } => sqlx::query::<Db>(
            "UPDATE outbox SET state = 'failed', finished_at = $1, last_error = $2, sent = $3,
                 claimed_by = NULL, claimed_until = 0 WHERE id = $4",
        )
        .bind(now)
        .bind(error)
        .bind(sent)
        .bind(id),
    };
    query.execute(&mut *conn).await?;
    Ok(())
}
}

/// How many jobs wait, failed and were done in the last day.
#[derive(Debug, Clone, Default, FromRow)]
pub struct OutboxCounts {
    pub pending: i64,
    pub failed: i64,
    pub done_today: i64,
}

impl Store {
    /// Claims up to `limit` due jobs for `claim_secs`, earliest first: queued ones whose time has come,
    /// or ones whose claim lapsed (their process stopped mid-attempt); the flag says which. Two
    /// statements for the lot: the candidates, then one update that takes only those still as they
    /// were (another process may have claimed some in between).
    pub(crate) async fn claim_jobs(
        &self,
        owner: &str,
        claim_secs: i64,
        limit: usize,
    ) -> Result<Vec<(Job, bool)>, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        let candidates: Vec<(i64, JobState)> = on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, state FROM outbox
             WHERE state IN ('queued', 'sending') AND due_at <= $1
               AND (state = 'queued' OR claimed_until < $2)
             ORDER BY due_at, id LIMIT $3",
        )
        .bind(now)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(pool)
        .await?);
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let jobs: Vec<Job> = on_pool!(self, |pool| {
            let mut update =
                QueryBuilder::new("UPDATE outbox SET state = 'sending', claimed_by = ");
            update
                .push_bind(owner)
                .push(", claimed_until = ")
                .push_bind(now + claim_secs)
                .push(", attempts = attempts + 1 WHERE due_at <= ")
                .push_bind(now)
                .push(" AND (state = 'queued' OR (state = 'sending' AND claimed_until < ")
                .push_bind(now)
                .push(")) AND id IN (");
            let mut ids = update.separated(", ");
            for (id, _) in &candidates {
                ids.push_bind(*id);
            }
            update.push(") RETURNING *");
            update.build_query_as().fetch_all(pool).await?
        });
        let mut claimed: Vec<(Job, bool)> = jobs
            .into_iter()
            .map(|job| {
                let taken_over = candidates
                    .iter()
                    .any(|(id, state)| *id == job.id && *state == JobState::Sending);
                (job, taken_over)
            })
            .collect();
        claimed.sort_by_key(|(job, _)| (job.due_at, job.id));
        Ok(claimed)
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

    /// Marks running campaigns done once none of their jobs waits or is being sent. Called when a
    /// worker finds nothing to do and before a campaign is shown, not after every send: a statement
    /// per message is what a campaign's rate is made of.
    pub(crate) async fn finish_campaigns(&self) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE campaigns SET state = 'done', finished_at = $1
             WHERE state = 'running' AND NOT EXISTS (SELECT 1 FROM outbox
                 WHERE outbox.campaign_id = campaigns.id AND outbox.state IN ('queued', 'sending'))",
        )
        .bind(unix_now())
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Records what became of an attempt, committed by the message writer in the same transaction as
    /// the messages arriving meanwhile: a campaign records hundreds of attempts a second, and as writes
    /// of their own each took SQLite's one write lock (and a sync) from under the webhook's messages, or
    /// on PostgreSQL a commit each.
    pub(crate) async fn record_attempt(&self, attempt: Attempt) -> Result<(), StoreError> {
        self.writer.op(Op::Job(attempt)).await?;
        Ok(())
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

    pub(crate) async fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM outbox WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// Queues an operator's (or an API client's) customer-service message to `openid`; returns the
    /// job's id. With `once`, the idempotency key is recorded in the same commit.
    pub(crate) async fn queue_custom(
        &self,
        openid: &str,
        payload: &str,
        author: &str,
        once: Option<&Once>,
    ) -> Result<i64, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO outbox (kind, openid, due_at, created_at, payload, author)
                 VALUES ('custom', $1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(openid)
            .bind(now)
            .bind(now)
            .bind(payload)
            .bind(author)
            .fetch_one(&mut *tx)
            .await?;
            tx.record_once(once, id).await?;
            tx.commit().await?;
            id
        }))
    }

    /// The bot answered the message with key `dedup_key` in time: its late-reply job is done without a
    /// send, and `reply_xml` becomes the message's stored reply (what a retry of it is answered). False,
    /// and nothing changed, if the job was no longer waiting.
    pub(crate) async fn settle_in_time(
        &self,
        dedup_key: &str,
        reply_xml: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let settled = sqlx::query(
                "UPDATE outbox SET state = 'done', finished_at = $1, sent = 'passive reply'
                 WHERE kind = 'reply' AND state = 'queued'
                   AND message_id = (SELECT id FROM messages WHERE dedup_key = $2)",
            )
            .bind(now)
            .bind(dedup_key)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if settled {
                sqlx::query("UPDATE messages SET reply_xml = $1 WHERE dedup_key = $2")
                    .bind(reply_xml)
                    .bind(dedup_key)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            settled
        }))
    }

    /// A late answer for the message with key `dedup_key`: its late-reply job sends `payload` (a
    /// customer-service message) now. False if the job was no longer waiting.
    pub(crate) async fn hand_late_answer(
        &self,
        dedup_key: &str,
        payload: Option<&str>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        let handed = on_pool!(self, |pool| sqlx::query(
            "UPDATE outbox SET payload = $1, due_at = $2,
                 state = CASE WHEN $1 IS NULL THEN 'done' ELSE 'queued' END,
                 finished_at = CASE WHEN $1 IS NULL THEN $2 ELSE NULL END
             WHERE kind = 'reply' AND state = 'queued'
               AND message_id = (SELECT id FROM messages WHERE dedup_key = $3)"
        )
        .bind(payload)
        .bind(now)
        .bind(dedup_key)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(handed == 1)
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
