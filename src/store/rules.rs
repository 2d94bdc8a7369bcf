//! The account's reply rules, and the revision number every edit bumps so each instance's cache knows.

use super::{Store, StoreError, on_pool, stored_as_text};
use crate::time::unix_now;

/// Which messages a rule answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// A new follower (the `subscribe` event).
    Welcome,
    /// Any message no keyword rule answers.
    Default,
    /// Texts matching its keyword, or a menu CLICK with its key.
    Keyword,
}
stored_as_text!(RuleKind { Welcome = "welcome", Default = "default", Keyword = "keyword" });

/// How a keyword rule matches a text message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    /// The whole message, ignoring surrounding space and letter case.
    Exact,
    /// Anywhere in the message, ignoring letter case.
    Contains,
}
stored_as_text!(MatchMode { Exact = "exact", Contains = "contains" });

/// A reply rule as stored; `reply` is the [`crate::wechat::Reply`] as JSON.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReplyRule {
    pub id: i64,
    pub kind: RuleKind,
    pub position: i64,
    pub match_mode: MatchMode,
    pub keyword: Option<String>,
    pub click_key: Option<String>,
    pub reply: String,
    pub enabled: bool,
    pub updated_at: i64,
    /// Delivered after the 5-second window, as a customer-service message.
    pub slow: bool,
    /// The scene of the QR code whose scans it answers.
    pub qr_scene: Option<String>,
    /// The bot asked for the answer; `reply` is then the fallback.
    pub bot_url: Option<String>,
    /// How long the passive reply waits for the bot.
    pub bot_budget_ms: i64,
}

/// What an edit sets on a rule.
#[derive(Debug, Clone)]
pub struct RuleEdit {
    pub match_mode: MatchMode,
    pub keyword: Option<String>,
    pub click_key: Option<String>,
    pub reply: String,
    pub enabled: bool,
    pub slow: bool,
    pub qr_scene: Option<String>,
    pub bot_url: Option<String>,
    pub bot_budget_ms: i64,
}

/// Which way a keyword rule moves in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Up,
    Down,
}

impl Store {
    /// Every rule: welcome, default, then keyword rules in the order they are tried.
    pub async fn reply_rules(&self) -> Result<Vec<ReplyRule>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT * FROM reply_rules
             ORDER BY CASE kind WHEN 'welcome' THEN 0 WHEN 'default' THEN 1 ELSE 2 END, position, id",
        )
        .fetch_all(pool)
        .await?
        }))
    }

    pub(crate) async fn reply_rule(&self, id: i64) -> Result<Option<ReplyRule>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM reply_rules WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// The rules' revision: it changes with every edit, from any instance.
    pub(crate) async fn rules_revision(&self) -> Result<i64, StoreError> {
        let value: Option<String> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT value FROM settings WHERE name = 'reply_rules_revision'"
        )
        .fetch_optional(pool)
        .await?);
        Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Adds a keyword rule at the end of the order; returns its id.
    pub(crate) async fn add_keyword_rule(&self, edit: &RuleEdit) -> Result<i64, StoreError> {
        let _turn = self.write_turn().await;
        let id = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let id = sqlx::query_scalar(
                    "INSERT INTO reply_rules (kind, position, match_mode, keyword, click_key, reply, enabled, slow,
                 updated_at, qr_scene, bot_url, bot_budget_ms)
             VALUES ('keyword', (SELECT coalesce(max(position), 0) + 1 FROM reply_rules WHERE kind = 'keyword'),
                     $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             RETURNING id",
                )
                .bind(edit.match_mode)
                .bind(&edit.keyword)
                .bind(&edit.click_key)
                .bind(&edit.reply)
                .bind(edit.enabled)
                .bind(edit.slow)
                .bind(unix_now())
                .bind(&edit.qr_scene)
                .bind(&edit.bot_url)
                .bind(edit.bot_budget_ms)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// Changes a rule; `false` when there is no such rule.
    pub(crate) async fn update_rule(&self, id: i64, edit: &RuleEdit) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                    "UPDATE reply_rules SET match_mode = $1, keyword = $2, click_key = $3, reply = $4, enabled = $5,
                         slow = $6, updated_at = $7, qr_scene = $9, bot_url = $10, bot_budget_ms = $11
                     WHERE id = $8",
                )
                .bind(edit.match_mode)
                .bind(&edit.keyword)
                .bind(&edit.click_key)
                .bind(&edit.reply)
                .bind(edit.enabled)
                .bind(edit.slow)
                .bind(unix_now())
                .bind(id)
                .bind(&edit.qr_scene)
                .bind(&edit.bot_url)
                .bind(edit.bot_budget_ms)
                .execute(&mut *tx)
                .await?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
            done.rows_affected()
        });
        Ok(done == 1)
    }

    /// Deletes a keyword rule (the welcome and default rules are switched off instead).
    pub(crate) async fn delete_rule(&self, id: i64) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("DELETE FROM reply_rules WHERE id = $1 AND kind = 'keyword'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            tx.commit().await?;
            done.rows_affected()
        });
        Ok(done == 1)
    }

    /// Swaps a keyword rule with its neighbour in the order.
    pub(crate) async fn move_rule(&self, id: i64, direction: Move) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // Two fixed statements: the comparison and the order are the only difference.
            let neighbour_sql = match direction {
                    Move::Up => {
                        "SELECT me.position, other.id, other.position FROM reply_rules me, reply_rules other
                 WHERE me.id = $1 AND me.kind = 'keyword' AND other.kind = 'keyword'
                   AND (other.position, other.id) < (me.position, me.id)
                 ORDER BY other.position DESC, other.id DESC LIMIT 1"
                    }
                    Move::Down => {
                        "SELECT me.position, other.id, other.position FROM reply_rules me, reply_rules other
                 WHERE me.id = $1 AND me.kind = 'keyword' AND other.kind = 'keyword'
                   AND (other.position, other.id) > (me.position, me.id)
                 ORDER BY other.position ASC, other.id ASC LIMIT 1"
                    }
                };
            let neighbour: Option<(i64, i64, i64)> = sqlx::query_as(neighbour_sql)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some((mine, other_id, theirs)) = neighbour {
                // Positions are distinct (each new rule goes after the last), so a swap keeps them so.
                for (rule, position) in [(id, theirs), (other_id, mine)] {
                    sqlx::query("UPDATE reply_rules SET position = $1 WHERE id = $2")
                        .bind(position)
                        .bind(rule)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(BUMP_REVISION).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }
}

/// Every rule edit bumps the revision in its own transaction.
const BUMP_REVISION: &str =
    "INSERT INTO settings (name, value) VALUES ('reply_rules_revision', '1')
     ON CONFLICT (name) DO UPDATE SET value = CAST(CAST(settings.value AS BIGINT) + 1 AS TEXT)";

impl StoreError {
    /// Whether a write failed on a uniqueness constraint (a CLICK key bound twice, a name taken).
    pub(crate) fn is_conflict(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}
