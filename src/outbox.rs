//! The outbox worker: replies after the 5-second window and operators' answers (`message/custom/send`),
//! template messages (`message/template/send`), and follower info on subscribe (`cgi-bin/user/info`),
//! from the `outbox` table.
//!
//! Jobs are queued in the same commit as the message they answer, so a stored message never loses its
//! job. Every process runs a worker; a job is claimed for [`CLAIM_SECS`] before each attempt (one
//! attempt is bounded well inside that), so two workers never send the same job at once. If a process
//! dies mid-attempt its claim lapses and another worker (or the restarted one) takes the job over: the
//! only way a follower can get a message twice, and the log says so when it happens.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::bot::{self, Bots};
use crate::replies::Replies;
use crate::store::{Attempt, FollowerInfo, Job, JobKind, Store};
use crate::time::unix_now;
use crate::upstream::ApiError;
use crate::upstream::account::{Account, custom_message};
use crate::wechat::Inbound;

/// How long a claim lasts; an attempt is cut off well before.
pub(crate) const CLAIM_SECS: i64 = 20;
const ATTEMPT_LIMIT: Duration = Duration::from_secs(15);
/// After this many attempts a job that keeps failing for passing reasons is given up.
pub(crate) const MAX_ATTEMPTS: i64 = 10;
/// Jobs in progress at once, per process.
const CONCURRENCY: usize = 8;
/// How often an idle worker looks for jobs queued by other processes.
const POLL: Duration = Duration::from_secs(1);

/// The time from now to the start of unix second `due` (zero if it has begun).
fn until_second(due: i64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(due.max(0) as u64).saturating_sub(now)
}

/// The pause before attempt `attempts + 1`: 2 s, 4 s, 8 s … up to 10 minutes.
pub fn backoff(attempts: i64) -> i64 {
    2i64.saturating_pow(attempts.clamp(1, 30) as u32).min(600)
}

/// Why an attempt failed.
#[derive(Debug)]
struct Failure {
    reason: String,
    transient: bool,
    /// What was to be sent, kept with a job given up (for the operator).
    sent: Option<String>,
    /// The call was cut off before WeChat answered: it may have been delivered all the same.
    cut_off: bool,
}

impl Failure {
    fn permanent(reason: String) -> Self {
        Self {
            reason,
            transient: false,
            sent: None,
            cut_off: false,
        }
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self {
            transient: e.is_transient(),
            cut_off: matches!(e, ApiError::Timeout),
            reason: e.to_string(),
            sent: None,
        }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Self {
            reason: format!("database: {e}"),
            transient: true,
            sent: None,
            cut_off: false,
        }
    }
}

/// What an attempt sent: the message as JSON, and WeChat's msgid for a template message.
#[derive(Debug, Default)]
struct Sent {
    body: Option<String>,
    msgid: Option<String>,
}

impl Sent {
    fn body(body: String) -> Self {
        Self {
            body: Some(body),
            msgid: None,
        }
    }
}

/// One process's worker.
#[derive(Debug)]
pub struct Outbox {
    store: Store,
    account: Account,
    replies: Arc<Replies>,
    bots: Arc<Bots>,
    owner: String,
    wake: Notify,
    /// Template messages sent per second by this process, at most: a campaign's jobs are due at its
    /// rate, and this keeps a backlog (after a slowdown or a restart) from going out in a burst.
    template_pace: governor::DefaultDirectRateLimiter,
    /// Campaigns' messages by campaign id.
    bodies: std::sync::Mutex<std::collections::HashMap<i64, Arc<serde_json::Value>>>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Outbox {
    pub fn new(
        store: Store,
        account: Account,
        replies: Arc<Replies>,
        bots: Arc<Bots>,
        template_rate: i64,
    ) -> Self {
        let per_second =
            std::num::NonZeroU32::new(template_rate.clamp(1, i64::from(u32::MAX)) as u32)
                .unwrap_or(std::num::NonZeroU32::MIN);
        // A tenth of a second's worth may go at once, to make up for a moment the sends fell behind: with
        // no slack, every pause (a slow answer, the timer's rounding) was lost for good and the
        // campaign fell short of its rate.
        let burst =
            std::num::NonZeroU32::new(per_second.get() / 10).unwrap_or(std::num::NonZeroU32::MIN);
        Self {
            store,
            account,
            replies,
            bots,
            owner: crate::store::owner_id(),
            wake: Notify::new(),
            bodies: std::sync::Mutex::default(),
            template_pace: governor::RateLimiter::direct(
                governor::Quota::per_second(per_second).allow_burst(burst),
            ),
        }
    }

    /// A job was queued in this process: look now rather than at the next poll.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Takes due jobs and works on them, forever (until the database closes).
    pub async fn run(self: Arc<Self>) {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        loop {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            if self.store.is_closed() {
                return;
            }
            // As many jobs as there are free hands, claimed together.
            let mut hands = vec![permit];
            while let Ok(permit) = Arc::clone(&permits).try_acquire_owned() {
                hands.push(permit);
            }
            match self
                .store
                .claim_jobs(&self.owner, CLAIM_SECS, hands.len())
                .await
            {
                Ok(jobs) if !jobs.is_empty() => {
                    for ((job, taken_over), permit) in jobs.into_iter().zip(hands) {
                        let worker = Arc::clone(&self);
                        tokio::spawn(async move {
                            worker.attempt(job, taken_over).await;
                            drop(permit);
                        });
                    }
                }
                Ok(_) => {
                    drop(hands);
                    if let Err(e) = self.store.finish_campaigns().await {
                        tracing::warn!(error = %e, "marking finished campaigns failed");
                    }
                    let pause = match self.store.next_job_due().await {
                        // Until the very start of the second it is due (a campaign's jobs are due a
                        // second's worth at a time: waking late would lose part of that second).
                        Ok(Some(due)) => until_second(due).min(POLL),
                        _ => POLL,
                    };
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(pause) => {}
                    }
                }
                Err(_) if self.store.is_closed() => return,
                Err(e) => {
                    drop(hands);
                    tracing::warn!(error = %e, "taking a job from the outbox failed");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    async fn attempt(&self, job: Job, taken_over: bool) {
        if taken_over {
            tracing::warn!(
                job = job.id,
                kind = job.kind.as_str(),
                attempt = job.attempts,
                "an attempt was cut off in mid-call (its process stopped); trying again, so WeChat may \
                 receive this one twice"
            );
        }
        let outcome = match tokio::time::timeout(ATTEMPT_LIMIT, self.perform(&job)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure {
                reason: "the attempt took too long".into(),
                transient: true,
                sent: None,
                cut_off: true,
            }),
        };
        if let Err(f) = &outcome
            && f.cut_off
            && job.kind != JobKind::UserInfo
        {
            tracing::warn!(
                job = job.id,
                kind = job.kind.as_str(),
                attempt = job.attempts,
                "an attempt was cut off in mid-call (no answer in time); WeChat may have delivered it, so \
                 the next attempt may make the follower receive it twice"
            );
        }
        let recorded = match outcome {
            Ok(sent) => {
                tracing::info!(
                    job = job.id,
                    kind = job.kind.as_str(),
                    attempt = job.attempts,
                    "outbox job done"
                );
                self.store
                    .record_attempt(Attempt::Done {
                        id: job.id,
                        sent: sent.body,
                        msgid: sent.msgid,
                    })
                    .await
            }
            Err(f) if f.transient && job.attempts < MAX_ATTEMPTS => {
                let pause = backoff(job.attempts);
                tracing::info!(job = job.id, kind = job.kind.as_str(), attempt = job.attempts, retry_in = pause, reason = %f.reason, "outbox job will be retried");
                self.store
                    .record_attempt(Attempt::Retry {
                        id: job.id,
                        due_at: unix_now() + pause,
                        error: f.reason,
                    })
                    .await
            }
            Err(f) => {
                tracing::warn!(job = job.id, kind = job.kind.as_str(), attempt = job.attempts, reason = %f.reason, "outbox job given up");
                self.store
                    .record_attempt(Attempt::Failed {
                        id: job.id,
                        error: f.reason,
                        sent: f.sent,
                    })
                    .await
            }
        };
        if let Err(e) = recorded {
            // The claim lapses and the job is attempted again: a reply may then be sent twice.
            tracing::error!(job = job.id, error = %e, "recording an outbox attempt failed");
        }
    }

    /// Does the job; returns what was sent, if anything.
    async fn perform(&self, job: &Job) -> Result<Sent, Failure> {
        match job.kind {
            JobKind::Reply => self.reply(job).await,
            JobKind::Custom => {
                let payload = job.payload.as_deref().unwrap_or_default();
                let message: serde_json::Value = serde_json::from_str(payload).map_err(|e| {
                    Failure::permanent(format!("the stored message is unreadable: {e}"))
                })?;
                self.send(&message).await
            }
            JobKind::Template => self.template(job).await,
            JobKind::UserInfo => {
                let info = self.account.user_info(&job.openid).await?;
                let tags = serde_json::to_string(&info.tagid_list).unwrap_or_else(|_| "[]".into());
                self.store
                    .save_follower_info(
                        &job.openid,
                        &FollowerInfo {
                            unionid: info.unionid,
                            subscribe_time: info.subscribe_time,
                            remark: info.remark,
                            tags,
                        },
                    )
                    .await?;
                Ok(Sent::default())
            }
        }
    }

    /// A campaign's message (it never changes), read once per campaign.
    async fn campaign_body(&self, id: i64) -> Result<Option<Arc<serde_json::Value>>, Failure> {
        if let Some(body) = lock(&self.bodies).get(&id) {
            return Ok(Some(Arc::clone(body)));
        }
        let Some(body) = self.store.campaign_body(id).await? else {
            return Ok(None);
        };
        let body: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| Failure::permanent(format!("the stored campaign is unreadable: {e}")))?;
        let body = Arc::new(body);
        let mut bodies = lock(&self.bodies);
        if bodies.len() >= 64 {
            bodies.clear();
        }
        bodies.insert(id, Arc::clone(&body));
        Ok(Some(body))
    }

    /// Sends the job's campaign's template message to the job's follower.
    async fn template(&self, job: &Job) -> Result<Sent, Failure> {
        let body = match job.campaign_id {
            Some(id) => self.campaign_body(id).await?,
            None => None,
        };
        let Some(body) = body else {
            return Err(Failure::permanent("its campaign was deleted".into()));
        };
        let mut message = (*body).clone();
        message["touser"] = job.openid.clone().into();
        let sent = message.to_string();
        self.template_pace.until_ready().await;
        match self.account.send_template(&message).await {
            Ok(msgid) => Ok(Sent {
                body: Some(sent),
                msgid: Some(msgid),
            }),
            Err(e) => Err(Failure {
                sent: Some(sent),
                ..Failure::from(e)
            }),
        }
    }

    /// Answers the job's message, as a customer-service message: with the bot's answer handed over by
    /// the webhook, or else with the rule that matches it now (asking its bot, if it has one).
    async fn reply(&self, job: &Job) -> Result<Sent, Failure> {
        self.window_open(&job.openid).await?;
        if let Some(payload) = job.payload.as_deref() {
            let message: serde_json::Value = serde_json::from_str(payload)
                .map_err(|e| Failure::permanent(format!("the stored answer is unreadable: {e}")))?;
            return self.send(&message).await;
        }
        let message = match job.message_id {
            Some(id) => self.store.message(id).await?,
            None => None,
        };
        let Some(message) = message else {
            return Err(Failure::permanent(
                "the message it answers was deleted".into(),
            ));
        };
        let inbound = Inbound::parse(&message.message.raw_xml)
            .map_err(|e| Failure::permanent(format!("the stored message is unreadable: {e}")))?;
        let Some(answer) = self.replies.reply_to(&inbound).await else {
            // The rule was switched off or deleted since: nothing to say any more.
            return Ok(Sent::default());
        };
        let reply = match &answer.bot {
            None => answer.reply,
            Some(rule) => {
                let id = bot::question_id(&message.message.dedup_key);
                match self.bots.ask(rule, &inbound, &id, bot::TIMEOUT).await {
                    Ok(Some(reply)) => reply,
                    Ok(None) => return Ok(Sent::default()),
                    Err(e) => {
                        tracing::warn!(job = job.id, error = %e, "the bot failed; sending the rule's fallback");
                        answer.reply
                    }
                }
            }
        };
        let Some(custom) = custom_message(&job.openid, &reply) else {
            return Err(Failure::permanent(format!(
                "a {} reply cannot be sent as a customer-service message",
                reply.msg_type()
            )));
        };
        self.send(&custom).await
    }

    /// Customer-service messages reach only a follower who interacted in the last 48 hours
    /// (docs/wechat.md §9): past that the job is given up without a call WeChat would refuse (45015).
    async fn window_open(&self, openid: &str) -> Result<(), Failure> {
        let last = self.store.last_interaction(openid).await?;
        if last.is_none_or(|at| unix_now() - at > 48 * 3600) {
            return Err(Failure::permanent(
                "the follower's 48-hour window for customer-service messages has closed".into(),
            ));
        }
        Ok(())
    }

    /// Sends a customer-service message; what was sent is kept whatever the outcome.
    async fn send(&self, message: &serde_json::Value) -> Result<Sent, Failure> {
        let sent = message.to_string();
        match self.account.send_custom(message).await {
            Ok(()) => Ok(Sent::body(sent)),
            Err(e) => Err(Failure {
                sent: Some(sent),
                ..Failure::from(e)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        assert_eq!(
            (1..=11).map(backoff).collect::<Vec<_>>(),
            [2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]
        );
    }
}
