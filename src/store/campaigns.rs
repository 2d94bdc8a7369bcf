//! Template messages: the account's templates as last listed, and campaigns (a template message to one
//! follower or to every follower matching the list's filters), each one `template` outbox job per
//! follower, due at the campaign's rate.

use sqlx::{FromRow, QueryBuilder};

use super::jobs::NEVER;
use super::users::{postgres, sqlite};
use super::{Job, Once, RecordOnce, Store, StoreError, UserQuery, on_pool, stored_as_text};
use crate::time::unix_now;

/// One of the account's templates.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Template {
    pub template_id: String,
    pub title: String,
    pub primary_industry: String,
    pub deputy_industry: String,
    /// `{{first.DATA}}`-style placeholders between lines of text.
    pub content: String,
    pub example: String,
    pub fetched_at: i64,
}

/// Where a campaign is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignState {
    Running,
    Paused,
    Cancelled,
    Done,
}
stored_as_text!(CampaignState { Running = "running", Paused = "paused", Cancelled = "cancelled", Done = "done" });

#[derive(Debug, Clone, FromRow)]
pub struct Campaign {
    pub id: i64,
    pub template_id: String,
    /// template/send's body without `touser`.
    pub body: String,
    pub audience: String,
    pub state: CampaignState,
    pub total: i64,
    pub rate: i64,
    pub created_by: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// How far a campaign got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Waiting or being sent.
    pub remaining: i64,
    /// Accepted by WeChat.
    pub sent: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// TEMPLATESENDJOBFINISH statuses reported so far, with their counts.
    pub deliveries: Vec<(String, i64)>,
    /// Why jobs failed (WeChat's words, errcode first), with their counts, most common first.
    pub reasons: Vec<(String, i64)>,
}

/// Who a campaign goes to.
#[derive(Debug, Clone)]
pub enum Audience {
    /// One OpenID, known to the follower list or not.
    One(String),
    /// Every follower the list's search and filters match.
    Matching(UserQuery),
}

/// A campaign to create.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub template_id: String,
    pub body: String,
    /// The audience in words, for the admin.
    pub audience: String,
    pub rate: i64,
    pub created_by: String,
}

impl Store {
    /// Replaces the stored templates with WeChat's list.
    pub(crate) async fn replace_templates(&self, list: &[Template]) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM templates")
                .execute(&mut *tx)
                .await?;
            for t in list {
                sqlx::query(
                    "INSERT INTO templates (template_id, title, primary_industry, deputy_industry, content,
                         example, fetched_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&t.template_id)
                .bind(&t.title)
                .bind(&t.primary_industry)
                .bind(&t.deputy_industry)
                .bind(&t.content)
                .bind(&t.example)
                .bind(t.fetched_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn templates(&self) -> Result<Vec<Template>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM templates ORDER BY title, template_id"
        )
        .fetch_all(pool)
        .await?))
    }

    pub(crate) async fn template(&self, id: &str) -> Result<Option<Template>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM templates WHERE template_id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// Creates a campaign and one job per follower in one transaction: the `i`-th job is due
    /// `i / rate` seconds from now. Returns the campaign's id and how many followers it reaches.
    pub(crate) async fn create_campaign(
        &self,
        campaign: &NewCampaign,
        audience: &Audience,
        once: Option<&Once>,
    ) -> Result<(i64, i64), StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        let rate = campaign.rate.max(1);
        Ok(on_pool!(self, |pool, sql| {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO campaigns (template_id, body, audience, rate, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(&campaign.template_id)
            .bind(&campaign.body)
            .bind(&campaign.audience)
            .bind(rate)
            .bind(&campaign.created_by)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let mut insert = QueryBuilder::new(
                "INSERT INTO outbox (kind, openid, campaign_id, due_at, created_at) SELECT 'template', openid, ",
            );
            insert
                .push_bind(id)
                .push(", ")
                .push_bind(now)
                .push(" + (row_number() OVER (ORDER BY openid) - 1) / ")
                .push_bind(rate)
                .push(", ")
                .push_bind(now);
            match audience {
                Audience::One(openid) => {
                    insert
                        .push(" FROM (SELECT ")
                        .push_bind(openid.clone())
                        .push(" AS openid) AS one WHERE 1 = 1");
                }
                Audience::Matching(q) => {
                    insert.push(" FROM users WHERE 1 = 1");
                    sql::push_user_filters(&mut insert, q);
                }
            }
            insert.push(" ON CONFLICT DO NOTHING");
            let total = insert.build().execute(&mut *tx).await?.rows_affected() as i64;
            sqlx::query("UPDATE campaigns SET total = $1, state = CASE WHEN $1 = 0 THEN 'done' ELSE 'running' END WHERE id = $2")
                .bind(total)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.record_once(once, id).await?;
            tx.commit().await?;
            (id, total)
        }))
    }

    pub(crate) async fn campaign(&self, id: i64) -> Result<Option<Campaign>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM campaigns WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// The newest campaigns first.
    pub(crate) async fn campaigns(&self, limit: i64) -> Result<Vec<Campaign>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM campaigns ORDER BY id DESC LIMIT $1"
        )
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }

    /// What a campaign's jobs send, without `touser`.
    pub(crate) async fn campaign_body(&self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT body FROM campaigns WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// The first jobs of a campaign (a campaign to one follower has one).
    pub(crate) async fn campaign_jobs(&self, id: i64, limit: i64) -> Result<Vec<Job>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM outbox WHERE campaign_id = $1 ORDER BY id LIMIT $2"
        )
        .bind(id)
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }

    pub(crate) async fn campaign_progress(&self, id: i64) -> Result<Progress, StoreError> {
        let (states, deliveries, reasons): (Vec<(String, i64)>, _, _) = on_pool!(self, |pool| {
            let states = sqlx::query_as(
                "SELECT state, count(*) FROM outbox WHERE campaign_id = $1 GROUP BY state",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            let deliveries = sqlx::query_as(
                "SELECT delivery, count(*) FROM outbox WHERE campaign_id = $1 AND state = 'done'
                   AND delivery IS NOT NULL GROUP BY delivery ORDER BY delivery",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            let reasons = sqlx::query_as(
                "SELECT last_error, count(*) FROM outbox WHERE campaign_id = $1 AND state = 'failed'
                 GROUP BY last_error ORDER BY count(*) DESC, last_error LIMIT 20",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            (states, deliveries, reasons)
        });
        let count = |names: &[&str]| {
            states
                .iter()
                .filter(|(s, _)| names.contains(&s.as_str()))
                .map(|(_, n)| n)
                .sum()
        };
        Ok(Progress {
            remaining: count(&["queued", "sending"]),
            sent: count(&["done"]),
            failed: count(&["failed"]),
            cancelled: count(&["cancelled"]),
            deliveries,
            reasons: reasons
                .into_iter()
                .map(|(r, n): (Option<String>, i64)| (r.unwrap_or_default(), n))
                .collect(),
        })
    }

    /// Pauses a running campaign (its queued jobs wait), resumes a paused one (they are due again at its
    /// rate, from now), or cancels either (they are cancelled; a job being sent finishes). `false`
    /// when the campaign is not in a state the change applies to.
    pub(crate) async fn change_campaign(
        &self,
        id: i64,
        to: CampaignState,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let now = unix_now();
        let from: &[&str] = match to {
            CampaignState::Paused => &["running"],
            CampaignState::Running => &["paused"],
            CampaignState::Cancelled => &["running", "paused"],
            CampaignState::Done => return Ok(false),
        };
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE campaigns SET state = $1,
                     finished_at = CASE WHEN $1 = 'cancelled' THEN $2 ELSE finished_at END
                 WHERE id = $3 AND state IN ($4, $5)",
            )
            .bind(to)
            .bind(now)
            .bind(id)
            .bind(from[0])
            .bind(from.get(1).copied().unwrap_or(from[0]))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if changed {
                match to {
                    CampaignState::Paused => {
                        sqlx::query(
                            "UPDATE outbox SET due_at = $1 WHERE campaign_id = $2 AND state = 'queued'",
                        )
                        .bind(NEVER)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    CampaignState::Running => {
                        // Due again at the campaign's rate, in the order they were queued.
                        sqlx::query(
                            "UPDATE outbox SET due_at = $1 + (
                                 SELECT count(*) FROM outbox earlier
                                 WHERE earlier.campaign_id = $2 AND earlier.state = 'queued' AND earlier.id < outbox.id
                             ) / (SELECT rate FROM campaigns WHERE id = $2)
                             WHERE campaign_id = $2 AND state = 'queued'",
                        )
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    _ => {
                        sqlx::query(
                            "UPDATE outbox SET state = 'cancelled', finished_at = $1
                             WHERE campaign_id = $2 AND state = 'queued'",
                        )
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
            }
            tx.commit().await?;
            changed
        }))
    }
}
