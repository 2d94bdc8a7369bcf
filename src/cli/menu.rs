//! `wxportal menu`: the account's custom menu on WeChat, from a script or a terminal.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::CliError;

use crate::upstream::menu::Menu;

#[derive(Debug, Subcommand)]
pub enum MenuAction {
    /// Check a menu in menu/create's JSON shape against WeChat's rules, then send it.
    Push { file: PathBuf },
    /// Print the menu followers see now, as JSON that `menu push` takes.
    Show,
    /// Delete the menu on WeChat.
    Delete,
}

/// Runs a `menu` subcommand; the text to print.
pub async fn run(action: MenuAction) -> Result<String, CliError> {
    // A menu file is checked before anything else: its problems need neither a database nor WeChat.
    let push = match &action {
        MenuAction::Push { file } => Some(read_menu(file)?),
        MenuAction::Show | MenuAction::Delete => None,
    };
    let (_, store, account) = super::account_context().await?;
    let wechat = |what| move |source| CliError::WeChat { what, source };
    let result =
        match push {
            Some(menu) => {
                match account.create_menu(&menu).await {
                    Ok(()) => {
                        let json = serde_json::to_string(&menu).expect("a menu serializes");
                        store.save_menu_draft(&json).await.map_err(CliError::from).map(|()| {
                    format!(
                        "menu pushed: {} buttons (also saved as the draft in /admin/menu)",
                        menu.button.len()
                    )
                })
                    }
                    Err(e) => Err(wechat("pushing the menu")(e)),
                }
            }
            None if matches!(action, MenuAction::Show) => account
                .current_menu()
                .await
                .map(|current| {
                    serde_json::to_string_pretty(&current.to_menu()).expect("a menu serializes")
                })
                .map_err(wechat("loading the menu")),
            None => account
                .delete_menu()
                .await
                .map(|()| "menu deleted on WeChat".to_owned())
                .map_err(wechat("deleting the menu")),
        };
    store.close().await;
    result
}

/// A menu file in menu/create's JSON shape that keeps WeChat's rules, or every reason it does not.
fn read_menu(file: &Path) -> Result<Menu, CliError> {
    let text = std::fs::read_to_string(file).map_err(|source| CliError::Io {
        what: format!("cannot read {}", file.display()),
        source,
    })?;
    let menu: Menu = serde_json::from_str(&text).map_err(|e| {
        CliError::Refused(format!(
            "{} is not a menu in menu/create's JSON shape ({{\"button\": [...]}}): {e}",
            file.display()
        ))
    })?;
    let problems = menu.problems();
    if problems.is_empty() {
        Ok(menu)
    } else {
        Err(CliError::Refused(format!(
            "nothing was sent; the menu breaks WeChat's rules:\n  - {}",
            problems.join("\n  - ")
        )))
    }
}
