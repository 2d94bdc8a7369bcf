//! QR codes with a scene and what they brought: scans, new followers, and those followers who left.

use sqlx::FromRow;

use super::{Once, RecordOnce, Store, StoreError, on_pool};
use crate::time::unix_now;

/// A code to create: WeChat's answer to `qrcode/create` with the name and scene it was asked for.
#[derive(Debug, Clone)]
pub struct NewQrCode {
    pub name: String,
    pub scene: String,
    pub permanent: bool,
    pub ticket: String,
    pub url: String,
    pub expires_at: Option<i64>,
    pub created_by: String,
}

/// A stored code with its counts.
#[derive(Debug, Clone, FromRow)]
pub struct QrCode {
    pub id: i64,
    pub name: String,
    pub scene: String,
    pub permanent: bool,
    pub ticket: String,
    pub url: String,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub created_by: String,
    /// Subscribes through the code and scans of it by followers.
    pub scans: i64,
    /// Subscribes through the code.
    pub new_followers: i64,
    /// Followers whose latest subscribe was through the code and who have left since.
    pub unfollowed: i64,
}

/// A scan of a code with a scene, stored with its message: a subscribe through it (`subscribed`) or a
/// follower's SCAN. A subscribe without a scene has `scene: None` (the follower came another way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub scene: Option<String>,
    pub subscribed: bool,
}

/// The codes with their counts, then `$tail`.
macro_rules! with_counts {
    ($tail:literal) => {
        concat!(
            "SELECT c.*,
        (SELECT count(*) FROM qr_scans s WHERE s.scene = c.scene) AS scans,
        (SELECT count(*) FROM qr_scans s WHERE s.scene = c.scene AND s.subscribed = TRUE) AS new_followers,
        (SELECT count(*) FROM users u WHERE u.qr_scene = c.scene AND u.subscribed = FALSE) AS unfollowed
    FROM qr_codes c ",
            $tail
        )
    };
}

impl Store {
    /// Stores a created code; returns its id.
    pub(crate) async fn add_qr_code(
        &self,
        code: &NewQrCode,
        once: Option<&Once>,
    ) -> Result<i64, StoreError> {
        let _turn = self.write_turn().await;
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO qr_codes (name, scene, permanent, ticket, url, expires_at, created_at, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(&code.name)
            .bind(&code.scene)
            .bind(code.permanent)
            .bind(&code.ticket)
            .bind(&code.url)
            .bind(code.expires_at)
            .bind(unix_now())
            .bind(&code.created_by)
            .fetch_one(&mut *tx)
            .await?;
            tx.record_once(once, id).await?;
            tx.commit().await?;
            id
        }))
    }

    /// Every code, newest first, with its counts.
    pub async fn qr_codes(&self) -> Result<Vec<QrCode>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(with_counts!(
            "ORDER BY c.id DESC"
        ))
        .fetch_all(pool)
        .await?))
    }

    pub(crate) async fn qr_code(&self, id: i64) -> Result<Option<QrCode>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(with_counts!(
            "WHERE c.id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    pub(crate) async fn qr_code_by_scene(&self, scene: &str) -> Result<Option<QrCode>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(with_counts!(
            "WHERE c.scene = $1"
        ))
        .bind(scene)
        .fetch_optional(pool)
        .await?))
    }

    /// How many permanent codes exist (WeChat allows an account 100,000).
    pub(crate) async fn permanent_qr_codes(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT count(*) FROM qr_codes WHERE permanent = TRUE"
        )
        .fetch_one(pool)
        .await?))
    }
}
