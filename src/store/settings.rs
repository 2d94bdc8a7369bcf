//! Named settings the application keeps for itself: the generated server secret, the menu draft.

use super::{Store, StoreError, on_pool};

impl Store {
    /// A value generated once and shared by every instance: the first caller's `generate()` wins.
    pub(crate) async fn setting_or_insert(
        &self,
        name: &str,
        generate: impl FnOnce() -> String,
    ) -> Result<String, StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(generate())
        .execute(pool)
        .await?
        .rows_affected());
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT value FROM settings WHERE name = $1"
        )
        .bind(name)
        .fetch_one(pool)
        .await?))
    }
    /// The menu being edited (menu/create's JSON) and when it was last pushed.
    pub(crate) async fn menu_draft(&self) -> Result<String, StoreError> {
        let value: Option<String> = on_pool!(self, |pool| sqlx::query_scalar(
            "SELECT value FROM settings WHERE name = 'menu_draft'"
        )
        .fetch_optional(pool)
        .await?);
        Ok(value.unwrap_or_else(|| r#"{"button":[]}"#.into()))
    }

    pub(crate) async fn save_menu_draft(&self, json: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        on_pool!(self, |pool| sqlx::query(
            "INSERT INTO settings (name, value) VALUES ('menu_draft', $1)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(json)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(())
    }
}
