//! Followers imported from WeChat: the sync's progress (one row, so a run resumes where it stopped),
//! what it learns of each follower, the account's follower tags.

use sqlx::{FromRow, QueryBuilder};

use super::{Store, StoreError, on_pool, stored_as_text};
use crate::time::unix_now;

/// Where a sync is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    Running,
    Done,
    /// Stopped by an error (a quota, WeChat refusing): the next run resumes from the cursor.
    Failed,
}
stored_as_text!(SyncState { Running = "running", Done = "done", Failed = "failed" });

/// The sync's progress.
#[derive(Debug, Clone, FromRow)]
pub struct SyncRun {
    pub state: SyncState,
    pub started_at: i64,
    pub cursor: String,
    pub total: i64,
    pub seen: i64,
    pub unfollowed: i64,
    pub owner: Option<String>,
    pub heartbeat_at: i64,
    pub finished_at: Option<i64>,
    pub last_error: Option<String>,
}

/// What `user/info/batchget` said of one follower.
#[derive(Debug, Clone)]
pub struct SyncedFollower {
    pub openid: String,
    pub subscribed: bool,
    pub unionid: Option<String>,
    pub subscribe_time: Option<i64>,
    pub remark: Option<String>,
    /// JSON array of tag ids.
    pub tags: String,
}

/// A follower tag of the account.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct FollowerTag {
    pub id: i64,
    pub name: String,
    pub count: i64,
}

/// A run whose process has shown no sign of life for this long is taken over.
pub const STALE_SECS: i64 = 60;

impl Store {
    pub async fn follower_sync(&self) -> Result<Option<SyncRun>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM follower_sync WHERE id = 1"
        )
        .fetch_optional(pool)
        .await?))
    }

    /// Takes the sync for `owner`: a run stopped midway (failed, or its process gone) is resumed from
    /// its cursor; a finished one (or none) starts over. `None` while another process runs it.
    pub(crate) async fn claim_follower_sync(
        &self,
        owner: &str,
    ) -> Result<Option<SyncRun>, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO follower_sync (id, state, started_at, heartbeat_at) VALUES (1, 'done', 0, 0)
                 ON CONFLICT (id) DO NOTHING",
            )
            .execute(&mut *tx)
            .await?;
            // A finished run starts over; an unfinished one keeps its start (the followers it has not
            // seen by the end are the ones who left) and its cursor.
            let claimed = sqlx::query(
                "UPDATE follower_sync SET
                     started_at = CASE WHEN state = 'done' THEN $1 ELSE started_at END,
                     cursor = CASE WHEN state = 'done' THEN '' ELSE cursor END,
                     seen = CASE WHEN state = 'done' THEN 0 ELSE seen END,
                     unfollowed = 0, finished_at = NULL, last_error = NULL,
                     state = 'running', owner = $2, heartbeat_at = $1
                 WHERE id = 1 AND (state <> 'running' OR heartbeat_at < $3)",
            )
            .bind(now)
            .bind(owner)
            .bind(now - STALE_SECS)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            tx.commit().await?;
            if !claimed {
                return Ok(None);
            }
        });
        let run = self.follower_sync().await?;
        Ok(run.filter(|r| claimed_by(r, owner)))
    }

    /// Stores a page's followers and the cursor after them, in one transaction: a run stopped midway
    /// resumes after the last page stored.
    pub(crate) async fn store_synced_page(
        &self,
        owner: &str,
        run_started: i64,
        followers: &[SyncedFollower],
        cursor: &str,
        total: i64,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for chunk in followers.chunks(500) {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO users (openid, unionid, subscribed, subscribe_time, remark, tags,
                         info_fetched_at, synced_at, first_seen_at, last_seen_at) ",
                );
                insert.push_values(chunk, |mut row, f| {
                    row.push_bind(&f.openid)
                        .push_bind(&f.unionid)
                        .push_bind(f.subscribed)
                        .push_bind(f.subscribe_time)
                        .push_bind(&f.remark)
                        .push_bind(&f.tags)
                        .push_bind(now)
                        .push_bind(if f.subscribed {
                            Some(run_started)
                        } else {
                            None
                        })
                        .push_bind(f.subscribe_time.unwrap_or(now))
                        .push_bind(f.subscribe_time.unwrap_or(now));
                });
                // WeChat's word on following wins unless the webhook saw a (un)subscribe since the run
                // began: that is newer than the list the run walks.
                insert.push(
                    " ON CONFLICT (openid) DO UPDATE SET
                         unionid = coalesce(excluded.unionid, users.unionid),
                         subscribe_time = excluded.subscribe_time,
                         remark = excluded.remark,
                         tags = excluded.tags,
                         info_fetched_at = excluded.info_fetched_at,
                         synced_at = coalesce(excluded.synced_at, users.synced_at),
                         subscribed = CASE WHEN users.subscription_changed_at >= ",
                );
                insert
                    .push_bind(run_started)
                    .push(" THEN users.subscribed ELSE excluded.subscribed END");
                insert.build().execute(&mut *tx).await?;
            }
            let kept = sqlx::query(
                "UPDATE follower_sync SET cursor = $1, total = $2, seen = seen + $3, heartbeat_at = $4
                 WHERE id = 1 AND owner = $5 AND state = 'running'",
            )
            .bind(cursor)
            .bind(total)
            .bind(followers.len() as i64)
            .bind(now)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if kept {
                tx.commit().await?;
            }
            kept
        }))
    }

    /// Ends the run: followers this run did not find (and whom the webhook has not seen subscribe
    /// since it began) no longer follow. Returns how many were marked.
    pub(crate) async fn finish_follower_sync(
        &self,
        owner: &str,
        run_started: i64,
    ) -> Result<i64, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let unfollowed = sqlx::query(
                "UPDATE users SET subscribed = FALSE
                 WHERE subscribed AND (synced_at IS NULL OR synced_at < $1)
                   AND (subscription_changed_at IS NULL OR subscription_changed_at < $1)",
            )
            .bind(run_started)
            .execute(&mut *tx)
            .await?
            .rows_affected() as i64;
            sqlx::query(
                "UPDATE follower_sync SET state = 'done', finished_at = $1, unfollowed = $2, owner = NULL,
                     seen = (SELECT count(*) FROM users WHERE synced_at = $4)
                 WHERE id = 1 AND owner = $3",
            )
            .bind(now)
            .bind(unfollowed)
            .bind(owner)
            .bind(run_started)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            unfollowed
        }))
    }

    /// Stops the run with `error`; the next run resumes from its cursor.
    pub(crate) async fn fail_follower_sync(
        &self,
        owner: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            sqlx::query(
            "UPDATE follower_sync SET state = 'failed', last_error = $1, finished_at = $2, owner = NULL
             WHERE id = 1 AND owner = $3"
        )
        .bind(error)
        .bind(unix_now())
        .bind(owner)
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    /// Replaces the account's follower tags with WeChat's list.
    pub(crate) async fn replace_follower_tags(
        &self,
        tags: &[FollowerTag],
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM follower_tags")
                .execute(&mut *tx)
                .await?;
            if !tags.is_empty() {
                let mut insert =
                    QueryBuilder::new("INSERT INTO follower_tags (id, name, count, updated_at) ");
                insert.push_values(tags, |mut row, t| {
                    row.push_bind(t.id)
                        .push_bind(&t.name)
                        .push_bind(t.count)
                        .push_bind(now);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn follower_tags(&self) -> Result<Vec<FollowerTag>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT id, name, count FROM follower_tags ORDER BY id"
        )
        .fetch_all(pool)
        .await?))
    }

    /// Records that WeChat tagged these followers with `tag`.
    pub(crate) async fn add_follower_tag(
        &self,
        openids: &[String],
        tag: i64,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for openid in openids {
                let tags: Option<Option<String>> =
                    sqlx::query_scalar("SELECT tags FROM users WHERE openid = $1")
                        .bind(openid)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(tags) = tags else { continue };
                let mut ids: Vec<i64> = tags
                    .as_deref()
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default();
                if !ids.contains(&tag) {
                    ids.push(tag);
                }
                sqlx::query("UPDATE users SET tags = $1 WHERE openid = $2")
                    .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
                    .bind(openid)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("UPDATE follower_tags SET count = count + $1 WHERE id = $2")
                .bind(openids.len() as i64)
                .bind(tag)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }
}

fn claimed_by(run: &SyncRun, owner: &str) -> bool {
    run.state == SyncState::Running && run.owner.as_deref() == Some(owner)
}
