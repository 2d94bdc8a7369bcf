//! Named settings the application keeps for itself: the generated server secret, the menu draft.

use super::{Store, StoreError};

impl Store {
    /// A value generated once and shared by every instance: the first caller's `generate()` wins.
    pub(crate) async fn setting_or_insert(
        &self,
        name: &str,
        generate: impl FnOnce() -> String,
    ) -> Result<String, StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(generate())
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }
    /// The menu being edited (menu/create's JSON) and when it was last pushed.
    pub(crate) async fn menu_draft(&self) -> Result<String, StoreError> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = 'menu_draft'")
                .fetch_optional(&self.pool)
                .await?;
        Ok(value.unwrap_or_else(|| r#"{"button":[]}"#.into()))
    }

    pub(crate) async fn save_menu_draft(&self, json: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ('menu_draft', ?)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
