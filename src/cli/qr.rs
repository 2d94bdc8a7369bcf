//! `wxportal qr`: QR codes with a scene from a script; output is JSON.

use clap::Subcommand;

use super::CliError;
use crate::qr::{self, QrError};

#[derive(Debug, Subcommand)]
pub enum QrAction {
    /// Create a code on WeChat and print it: its scene, ticket, the URL it encodes and its expiry.
    Create {
        /// What the code is for, as the admin area lists it.
        name: String,
        /// A temporary code living this long (60 to 2592000, 30 days); permanent without it.
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<i64>,
    },
    /// Print every code with its scans, new followers and those who left since.
    List,
}

/// Runs a `qr` subcommand; the JSON to print.
pub async fn run(action: QrAction) -> Result<String, CliError> {
    let (_, store, account) = super::account_context().await?;
    let result = match action {
        QrAction::Create { name, expires_in } => {
            match qr::create(&store, &account, &name, expires_in, "cli", None).await {
                Ok(code) => Ok(qr::to_json(&code).to_string()),
                Err(QrError::Invalid(why)) => Err(CliError::Refused(why)),
                Err(QrError::WeChat(source)) => Err(CliError::WeChat {
                    what: "creating the QR code",
                    source,
                }),
                Err(QrError::Store(e)) => Err(e.into()),
            }
        }
        QrAction::List => store.qr_codes().await.map_err(CliError::from).map(|codes| {
            serde_json::Value::Array(codes.iter().map(qr::to_json).collect()).to_string()
        }),
    };
    store.close().await;
    result
}
