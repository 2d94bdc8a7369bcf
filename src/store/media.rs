//! Images uploaded as permanent material, with their thumbnails.

use sqlx::FromRow;

use super::{Store, StoreError, on_pool};
use crate::time::unix_now;

/// An uploaded image.
#[derive(Debug, Clone, FromRow)]
pub struct Media {
    pub id: i64,
    pub media_id: String,
    pub url: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    /// PNG, base64.
    pub thumbnail: String,
    pub created_by: String,
    pub created_at: i64,
}

impl Store {
    pub(crate) async fn add_media(&self, m: &Media) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| {
            sqlx::query(
            "INSERT INTO media (media_id, url, filename, content_type, size, thumbnail, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&m.media_id)
        .bind(&m.url)
        .bind(&m.filename)
        .bind(&m.content_type)
        .bind(m.size)
        .bind(&m.thumbnail)
        .bind(&m.created_by)
        .bind(unix_now())
        .execute(pool)
        .await?
        .rows_affected()
        });
        Ok(())
    }

    pub(crate) async fn media(&self, media_id: &str) -> Result<Option<Media>, StoreError> {
        Ok(on_pool!(self, |pool| sqlx::query_as(
            "SELECT * FROM media WHERE media_id = $1"
        )
        .bind(media_id)
        .fetch_optional(pool)
        .await?))
    }
}
