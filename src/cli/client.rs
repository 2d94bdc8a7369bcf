//! `wxportal client` and `wxportal oidc`: the apps that sign followers in through wxportal, and the
//! keys their ID tokens are signed with. Output is JSON; these need only `WXPORTAL_DATABASE_URL`.

use clap::Subcommand;
use serde_json::json;

use super::CliError;
use crate::config::{Config, SqliteSync};
use crate::oidc::clients::{self, ClientError, NewClient};
use crate::oidc::keys;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum ClientAction {
    /// Register an app and print its client id and secret (the secret is shown this once).
    Create {
        /// The app's name, as followers see it on the consent page.
        name: String,
        /// Where the app receives the code; matched exactly. Repeat for several.
        #[arg(long = "redirect-uri", value_name = "URI", required = true)]
        redirect_uris: Vec<String>,
        /// Where the app may send followers after logout; matched exactly. Repeat for several.
        #[arg(long = "logout-uri", value_name = "URI")]
        logout_uris: Vec<String>,
        /// A public app (single-page or mobile): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// Ask followers to consent before their first sign-in (remembered).
        #[arg(long)]
        consent: bool,
        /// `sub` is the follower's OpenID instead of an identifier for this app only.
        #[arg(long)]
        openid_subject: bool,
    },
    /// List the apps (no secrets).
    List,
    /// Delete an app and everything issued to it.
    Delete { client_id: String },
    /// Give an app a new secret and print it; the old one stops working at once.
    RotateSecret { client_id: String },
}

#[derive(Debug, Subcommand)]
pub enum OidcAction {
    /// Sign new ID tokens with a new key; the old key stays published for a day, so the tokens it
    /// signed still verify. Running servers switch within 30 seconds.
    RotateKey,
}

pub(super) async fn open() -> Result<Store, CliError> {
    let url = Config::database_url_from_env()?;
    Ok(Store::connect(&url, SqliteSync::Full).await?)
}

fn failed(e: ClientError) -> CliError {
    match e {
        ClientError::Store(e) => CliError::Store(e),
        other => CliError::Refused(other.to_string()),
    }
}

/// Runs a `client` subcommand; the JSON to print.
pub async fn run(action: ClientAction) -> Result<String, CliError> {
    let store = open().await?;
    let result = match action {
        ClientAction::Create {
            name,
            redirect_uris,
            logout_uris,
            public,
            consent,
            openid_subject,
        } => clients::create(
            &store,
            NewClient {
                name,
                redirect_uris,
                post_logout_redirect_uris: logout_uris,
                public,
                consent,
                subject_openid: openid_subject,
            },
        )
        .await
        .map(|registered| json!(registered).to_string())
        .map_err(failed),
        ClientAction::List => store
            .clients()
            .await
            .map(|all| {
                let listed: Vec<_> = all.into_iter().map(clients::describe).collect();
                json!(listed).to_string()
            })
            .map_err(CliError::from),
        ClientAction::Delete { client_id } => match store.delete_client(&client_id).await {
            Ok(true) => Ok(json!({"deleted": client_id}).to_string()),
            Ok(false) => Err(CliError::Refused(format!("no client {client_id:?}"))),
            Err(e) => Err(e.into()),
        },
        ClientAction::RotateSecret { client_id } => clients::rotate_secret(&store, &client_id)
            .await
            .map(|registered| json!(registered).to_string())
            .map_err(failed),
    };
    store.close().await;
    result
}

/// Runs an `oidc` subcommand; the JSON to print.
pub async fn run_oidc(action: OidcAction) -> Result<String, CliError> {
    let store = open().await?;
    let result = match action {
        OidcAction::RotateKey => match keys::rotate(&store).await {
            Ok(row) => store
                .signing_keys()
                .await
                .map(|all| {
                    let retired: Vec<&str> = all
                        .iter()
                        .filter(|k| k.retired_at.is_some())
                        .map(|k| k.kid.as_str())
                        .collect();
                    json!({"kid": row.kid, "alg": row.alg, "published_until_expiry": retired})
                        .to_string()
                })
                .map_err(CliError::from),
            Err(keys::KeyError::Store(e)) => Err(e.into()),
            Err(e) => Err(CliError::Refused(e.to_string())),
        },
    };
    store.close().await;
    result
}
