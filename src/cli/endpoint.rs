//! `wxportal endpoint`: where events go (docs/events.md). Output is JSON; these need only
//! `WXPORTAL_DATABASE_URL`. Running servers notice a change within two seconds.

use clap::Subcommand;
use serde_json::json;

use super::CliError;
use super::client::open;
use crate::events::EventType;
use crate::events::endpoints::{self, DEFAULT_OVERLAP_HOURS, EndpointError};

#[derive(Debug, Subcommand)]
pub enum EndpointAction {
    /// Register an endpoint and print its signing secret (shown this once).
    Add {
        /// Where events are posted (http:// or https://).
        url: String,
        /// The event types to send, comma-separated (message, subscribe, unsubscribe, scan, click,
        /// template_finish, oauth_signin), or * for all.
        #[arg(long, value_name = "TYPES", value_delimiter = ',', required = true)]
        events: Vec<String>,
        /// A note for the operators, such as the system behind the URL.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the endpoints with their deliveries counted (never their secrets).
    List,
    /// Remove an endpoint and its deliveries.
    Delete { id: i64 },
    /// Switch an endpoint back on (after it was switched off for failing).
    Enable { id: i64 },
    /// Switch an endpoint off: its events wait until it is switched on again.
    Disable { id: i64 },
    /// Give an endpoint a new secret and print it; the old one keeps signing for the overlap.
    RotateSecret {
        id: i64,
        /// Hours both secrets sign, so the receiver can switch without losing an event.
        #[arg(long, default_value_t = DEFAULT_OVERLAP_HOURS)]
        overlap_hours: i64,
    },
}

fn types(events: &[EventType]) -> Vec<&'static str> {
    events.iter().map(|e| e.as_str()).collect()
}

/// Runs an `endpoint` subcommand; the JSON to print.
pub async fn run(action: EndpointAction) -> Result<String, CliError> {
    // Refused before the database is opened.
    if let EndpointAction::Add { url, events, .. } = &action {
        endpoints::check(url, events).map_err(refused)?;
    }
    let store = open().await?;
    let missing = |id: i64| CliError::Refused(format!("no endpoint {id}"));
    let result = match action {
        EndpointAction::Add {
            url,
            events,
            description,
        } => endpoints::register(&store, &url, &description, &events)
            .await
            .map(|r| {
                json!({"id": r.id, "url": url, "events": types(&r.events), "secret": r.secret})
                    .to_string()
            })
            .map_err(refused),
        EndpointAction::List => store
            .endpoints()
            .await
            .map(|all| {
                let listed: Vec<_> = all
                    .iter()
                    .map(|s| {
                        let e = &s.endpoint;
                        json!({
                            "id": e.id,
                            "url": e.url,
                            "description": e.description,
                            "events": types(&e.events()),
                            "enabled": e.enabled,
                            "disabled_reason": e.disabled_reason,
                            "failing_since": e.failing_since,
                            "pending": s.pending,
                            "delivered": s.delivered,
                            "failed": s.failed,
                        })
                    })
                    .collect();
                json!(listed).to_string()
            })
            .map_err(CliError::from),
        EndpointAction::Delete { id } => match store.delete_endpoint(id).await {
            Ok(true) => Ok(json!({"deleted": id}).to_string()),
            Ok(false) => Err(missing(id)),
            Err(e) => Err(e.into()),
        },
        EndpointAction::Enable { id } | EndpointAction::Disable { id } => {
            let enable = matches!(action, EndpointAction::Enable { .. });
            match store
                .set_endpoint_enabled(id, enable, Some("switched off from the command line"))
                .await
            {
                Ok(true) => Ok(json!({"id": id, "enabled": enable}).to_string()),
                Ok(false) => Err(missing(id)),
                Err(e) => Err(e.into()),
            }
        }
        EndpointAction::RotateSecret { id, overlap_hours } => {
            match endpoints::rotate_secret(&store, id, overlap_hours).await {
                Ok(Some(secret)) => Ok(json!({
                    "id": id,
                    "secret": secret,
                    "previous_signs_for_hours": overlap_hours.clamp(0, 24 * 30),
                })
                .to_string()),
                Ok(None) => Err(missing(id)),
                Err(e) => Err(e.into()),
            }
        }
    };
    store.close().await;
    result
}

fn refused(e: EndpointError) -> CliError {
    match e {
        EndpointError::Invalid(why) => CliError::Refused(why),
        EndpointError::Store(e) => e.into(),
    }
}
