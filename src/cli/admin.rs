//! `wxportal admin`: the operators who sign in at `/admin`.

use clap::Subcommand;

use super::CliError;
use crate::config::{Config, SqliteSync};
use crate::passwords;
use crate::store::Store;
use crate::time::beijing_time;

#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create an admin. The password is read from standard input, or prompted for on a terminal.
    Create { name: String },
    /// Set an admin's password (their sessions end).
    Passwd { name: String },
    /// List the admins.
    List,
    /// Delete an admin (their sessions end).
    Delete { name: String },
}

/// Runs an `admin` subcommand; the text to print.
pub async fn run(action: AdminAction) -> Result<String, CliError> {
    let url = Config::database_url_from_env()?;
    let store = Store::connect(&url, SqliteSync::Full).await?;
    let result = act(&store, action).await;
    store.close().await;
    result
}

async fn act(store: &Store, action: AdminAction) -> Result<String, CliError> {
    let refused = |sentence: String| Err(CliError::Refused(sentence));
    match action {
        AdminAction::Create { name } => {
            passwords::check_name(&name)?;
            if store.admin_by_name(&name).await?.is_some() {
                return refused(format!(
                    "an admin named {name:?} exists; use `wxportal admin passwd {name}`"
                ));
            }
            let hash = passwords::hash(&read_password()?)?;
            if store.create_admin(&name, &hash).await? {
                Ok(format!("admin {name:?} created; sign in at /admin/login"))
            } else {
                refused(format!("an admin named {name:?} exists"))
            }
        }
        AdminAction::Passwd { name } => {
            if store.admin_by_name(&name).await?.is_none() {
                return refused(format!("no admin named {name:?}"));
            }
            let hash = passwords::hash(&read_password()?)?;
            if store.set_admin_password(&name, &hash).await? {
                Ok(format!(
                    "password of {name:?} changed; their sessions have ended"
                ))
            } else {
                refused(format!("no admin named {name:?}"))
            }
        }
        AdminAction::List => {
            let admins = store.admins().await?;
            if admins.is_empty() {
                return Ok("no admins yet: create one with `wxportal admin create NAME`".into());
            }
            Ok(admins
                .iter()
                .map(|a| {
                    format!(
                        "{:<24} created {}  last sign-in {}",
                        a.name,
                        beijing_time(a.created_at),
                        a.last_login_at.map_or_else(|| "never".into(), beijing_time)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        AdminAction::Delete { name } => {
            if store.delete_admin(&name).await? {
                Ok(format!("admin {name:?} deleted"))
            } else {
                refused(format!("no admin named {name:?}"))
            }
        }
    }
}

/// The new password: prompted twice without echo on a terminal, else the first line of standard input.
fn read_password() -> Result<String, CliError> {
    use std::io::IsTerminal;
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| CliError::Io { what, source }
    };
    let password = if std::io::stdin().is_terminal() {
        let first =
            rpassword::prompt_password("New password: ").map_err(io("reading the password"))?;
        let again =
            rpassword::prompt_password("Once more: ").map_err(io("reading the password"))?;
        if first != again {
            return Err(CliError::Refused(
                "the two passwords differ; nothing changed".into(),
            ));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(io("reading the password from standard input"))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    passwords::check_password(&password)?;
    Ok(password)
}
