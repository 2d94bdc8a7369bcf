//! Followers imported from WeChat (docs/followers.md): an account that installs wxportal after years has
//! most followers who never wrote since. A sync walks `cgi-bin/user/get` with its `next_openid` cursor
//! and `user/info/batchget` a hundred at a time, paced, storing each batch with the cursor so that a run
//! stopped by a crash or a quota resumes where it stopped, and marks who no longer follows at the end.
//! Also the account's follower tags: read from WeChat, set on followers (`members/batchtagging`).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::store::{
    FollowerTag, STALE_SECS, Store, StoreError, SyncRun, SyncState, SyncedFollower,
};
use crate::time::unix_now;
use crate::upstream::ApiError;
use crate::upstream::account::{Account, BATCHGET_MAX, BATCHTAG_MAX, TagAnswer};

/// Tries of one call that WeChat answers "too often" (45011) or cannot answer now, with a doubling pause.
const TRIES: u32 = 5;
/// A run that failed (a quota, WeChat refusing) is resumed by the nightly job after this long.
const RETRY_FAILED_AFTER: i64 = 3600;
/// The nightly run starts unless one finished within this long.
const NIGHTLY_GAP: i64 = 20 * 3600;

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Whether it continued a run stopped midway.
    pub resumed: bool,
    /// Followers WeChat counts.
    pub total: i64,
    /// Followers this run stored (with those stored before a resume).
    pub seen: i64,
    /// Followers found no longer following.
    pub unfollowed: i64,
    pub tags: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("a sync is running in another process")]
    Busy,
    #[error("another process took the sync over")]
    TakenOver,
    #[error("{0}")]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs syncs for one process, paced at `rate` WeChat calls a second.
#[derive(Debug)]
pub struct Syncer {
    store: Store,
    account: Account,
    owner: String,
    pace: governor::DefaultDirectRateLimiter,
}

impl Syncer {
    pub fn new(store: Store, account: Account, rate: u32) -> Self {
        let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
        Self {
            store,
            account,
            owner: crate::store::owner_id(),
            pace: governor::RateLimiter::direct(governor::Quota::per_second(rate)),
        }
    }

    /// Runs a sync to its end: resumes one stopped midway, or starts afresh.
    pub async fn run(&self) -> Result<SyncReport, SyncError> {
        let run = self.claim().await?.ok_or(SyncError::Busy)?;
        self.finish(run).await
    }

    /// Claims the sync for this process (a new run, or the one stopped midway), or `None` while another
    /// process is at it. Once claimed, the run shows as running to every reader.
    pub async fn claim(&self) -> Result<Option<SyncRun>, StoreError> {
        self.store.claim_follower_sync(&self.owner).await
    }

    /// Walks a claimed run to its end, recording where it stopped if it cannot.
    pub async fn finish(&self, run: SyncRun) -> Result<SyncReport, SyncError> {
        let resumed = !run.cursor.is_empty() || run.seen > 0;
        tracing::info!(
            resumed,
            cursor_set = !run.cursor.is_empty(),
            "follower sync started"
        );
        match self.walk(run.started_at, run.cursor, resumed).await {
            Ok(report) => {
                tracing::info!(
                    total = report.total,
                    seen = report.seen,
                    unfollowed = report.unfollowed,
                    "follower sync done"
                );
                Ok(report)
            }
            Err(e) => {
                tracing::warn!(error = %e, "follower sync stopped; the next run resumes where it stopped");
                if !matches!(e, SyncError::TakenOver)
                    && let Err(store) = self
                        .store
                        .fail_follower_sync(&self.owner, &e.to_string())
                        .await
                {
                    tracing::error!(error = %store, "recording the sync's failure failed");
                }
                Err(e)
            }
        }
    }

    async fn walk(
        &self,
        started_at: i64,
        mut cursor: String,
        resumed: bool,
    ) -> Result<SyncReport, SyncError> {
        let tags = kept(self.call(|| self.account.tags()).await?);
        self.store.replace_follower_tags(&tags).await?;
        let mut total;
        loop {
            let page = self.call(|| self.account.followers(&cursor)).await?;
            total = page.total;
            if page.data.openid.is_empty() {
                break;
            }
            let chunks: Vec<&[String]> = page.data.openid.chunks(BATCHGET_MAX).collect();
            for (i, chunk) in chunks.iter().enumerate() {
                let infos = self.call(|| self.account.batch_info(chunk)).await?;
                let followers: Vec<SyncedFollower> = infos
                    .into_iter()
                    .map(|f| SyncedFollower {
                        subscribed: f.subscribe == 1,
                        tags: serde_json::to_string(&f.info.tagid_list)
                            .unwrap_or_else(|_| "[]".into()),
                        openid: f.openid,
                        unionid: f.info.unionid,
                        subscribe_time: f.info.subscribe_time,
                        remark: f.info.remark,
                    })
                    .collect();
                // The cursor moves past the page with its last batch: a run stopped inside a page
                // resumes at the page's start (storing a follower twice changes nothing).
                let next = if i + 1 == chunks.len() {
                    page.next_openid.as_str()
                } else {
                    cursor.as_str()
                };
                if !self
                    .store
                    .store_synced_page(&self.owner, started_at, &followers, next, total)
                    .await?
                {
                    return Err(SyncError::TakenOver);
                }
            }
            if page.next_openid.is_empty() {
                break;
            }
            cursor = page.next_openid;
        }
        let unfollowed = self
            .store
            .finish_follower_sync(&self.owner, started_at)
            .await?;
        let seen = self.store.follower_sync().await?.map_or(0, |run| run.seen);
        Ok(SyncReport {
            resumed,
            total,
            seen,
            unfollowed,
            tags: tags.len(),
        })
    }

    /// One paced call; "too often" (45011) and passing failures are tried again after a doubling pause.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T, ApiError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let mut pause = Duration::from_secs(1);
        for attempt in 1..=TRIES {
            self.pace.until_ready().await;
            match f().await {
                Err(e) if attempt < TRIES && (e.errcode() == Some(45011) || e.is_transient()) => {
                    tracing::info!(error = %e, pause_secs = pause.as_secs(), "WeChat asks to slow down; pausing");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                other => return other,
            }
        }
        unreachable!("the last try returns")
    }

    /// The nightly job, in every process: once a minute, [`due`] says whether to run. Only one process
    /// runs a sync at a time.
    pub async fn nightly(self: Arc<Self>, hour: Option<u8>) {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if self.store.is_closed() {
                return;
            }
            let Ok(run) = self.store.follower_sync().await else {
                continue;
            };
            if due(run.as_ref(), hour, unix_now()) {
                let _ = self.run().await;
            }
        }
    }
}

/// Whether the nightly job runs a sync now, given the last run: it resumes a run whose process stopped,
/// retries a failed one after an hour, and starts one in the given hour, Beijing time (never when
/// `None`), unless one finished within 20 hours.
fn due(last: Option<&SyncRun>, hour: Option<u8>, now: i64) -> bool {
    match last {
        Some(r) if r.state == SyncState::Running => r.heartbeat_at < now - STALE_SECS,
        Some(r) if r.state == SyncState::Failed => {
            r.finished_at.unwrap_or(0) < now - RETRY_FAILED_AFTER
        }
        _ => {
            hour.is_some_and(|h| i64::from(h) == crate::time::beijing_hour(now))
                && last
                    .and_then(|r| r.finished_at)
                    .is_none_or(|at| at < now - NIGHTLY_GAP)
        }
    }
}

/// Tags followers on WeChat (fifty a call) and records it here.
pub async fn tag_followers(
    store: &Store,
    account: &Account,
    tag: i64,
    openids: &[String],
) -> Result<(), SyncError> {
    for chunk in openids.chunks(BATCHTAG_MAX) {
        account.tag_followers(tag, chunk).await?;
        store.add_follower_tag(chunk, tag).await?;
    }
    Ok(())
}

/// Reads the account's tags from WeChat and keeps them.
pub async fn refresh_tags(store: &Store, account: &Account) -> Result<Vec<FollowerTag>, SyncError> {
    let tags = kept(account.tags().await?);
    store.replace_follower_tags(&tags).await?;
    Ok(tags)
}

/// WeChat's tags as they are kept.
fn kept(tags: Vec<TagAnswer>) -> Vec<FollowerTag> {
    tags.into_iter()
        .map(|t| FollowerTag {
            id: t.id,
            name: t.name,
            count: t.count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-05 03:30 Beijing time (19:30 UTC the day before).
    const AT_0330: i64 = 1_796_412_600;

    fn run(state: SyncState, heartbeat_at: i64, finished_at: Option<i64>) -> SyncRun {
        SyncRun {
            state,
            started_at: 0,
            cursor: String::new(),
            total: 0,
            seen: 0,
            unfollowed: 0,
            owner: None,
            heartbeat_at,
            finished_at,
            last_error: None,
        }
    }

    #[test]
    fn a_run_starts_in_the_configured_hour_of_beijing_time_only() {
        assert_eq!(crate::time::beijing_time(AT_0330), "2026-12-05 03:30");
        assert!(due(None, Some(3), AT_0330));
        assert!(!due(None, Some(4), AT_0330));
        assert!(due(None, Some(4), AT_0330 + 3600));
        assert!(!due(None, None, AT_0330), "off");
        let yesterday = run(SyncState::Done, 0, Some(AT_0330 - 24 * 3600));
        assert!(due(Some(&yesterday), Some(3), AT_0330));
        let this_evening = run(SyncState::Done, 0, Some(AT_0330 - 10 * 3600));
        assert!(
            !due(Some(&this_evening), Some(3), AT_0330),
            "within 20 hours"
        );
    }

    #[test]
    fn stopped_runs_are_resumed_whatever_the_hour() {
        for hour in [None, Some(3), Some(12)] {
            let silent = run(SyncState::Running, AT_0330 - STALE_SECS - 1, None);
            assert!(due(Some(&silent), hour, AT_0330));
            let alive = run(SyncState::Running, AT_0330 - 1, None);
            assert!(!due(Some(&alive), hour, AT_0330), "its process is at it");
            let failed_long_ago = run(SyncState::Failed, 0, Some(AT_0330 - 3601));
            assert!(due(Some(&failed_long_ago), hour, AT_0330));
            let failed_just_now = run(SyncState::Failed, 0, Some(AT_0330 - 60));
            assert!(!due(Some(&failed_just_now), hour, AT_0330));
        }
    }
}
