//! `wxportal token`: the HTTP API's tokens (docs/api.md). Output is JSON; these need only
//! `WXPORTAL_DATABASE_URL`.

use clap::Subcommand;
use serde_json::json;

use super::CliError;
use super::client::open;
use crate::web::api::tokens::{self, TokenError};

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a token and print it (it is shown this once; only its hash is kept).
    Create {
        /// What the token is for, such as the system that will hold it.
        name: String,
        /// What it may do, comma-separated: followers:read, messages:read, messages:send,
        /// templates:send, qr:write.
        #[arg(long, value_name = "SCOPES", value_delimiter = ',', required = true)]
        scopes: Vec<String>,
    },
    /// List the tokens (never the tokens themselves).
    List,
    /// Revoke a token by its id; it stops working at once on every instance.
    Revoke { id: String },
}

/// Runs a `token` subcommand; the JSON to print.
pub async fn run(action: TokenAction) -> Result<String, CliError> {
    // Refused before the database is opened.
    if let TokenAction::Create { name, scopes } = &action {
        tokens::check(name, scopes).map_err(refused)?;
    }
    let store = open().await?;
    let result = match action {
        TokenAction::Create { name, scopes } => tokens::issue(&store, &name, &scopes)
            .await
            .map(|t| {
                json!({"id": t.id, "name": t.name, "scopes": t.scopes, "token": t.token})
                    .to_string()
            })
            .map_err(refused),
        TokenAction::List => store
            .api_tokens()
            .await
            .map(|all| {
                let listed: Vec<_> = all
                    .iter()
                    .map(|t| {
                        json!({
                            "id": t.id,
                            "name": t.name,
                            "scopes": t.scopes,
                            "created_at": t.created_at,
                            "last_used_at": t.last_used_at,
                            "revoked_at": t.revoked_at,
                        })
                    })
                    .collect();
                json!(listed).to_string()
            })
            .map_err(CliError::from),
        TokenAction::Revoke { id } => match store.revoke_api_token(&id).await {
            Ok(true) => Ok(json!({"revoked": id}).to_string()),
            Ok(false) => Err(CliError::Refused(format!("no live token {id:?}"))),
            Err(e) => Err(e.into()),
        },
    };
    store.close().await;
    result
}

fn refused(e: TokenError) -> CliError {
    match e {
        TokenError::Invalid(why) => CliError::Refused(why),
        TokenError::Store(e) => e.into(),
    }
}
