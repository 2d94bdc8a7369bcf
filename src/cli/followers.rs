//! `wxportal followers`: import the account's followers from WeChat, and their tags (docs/followers.md).
//! Output is JSON; these need the account's AppID and AppSecret.

use clap::Subcommand;
use serde_json::json;

use super::CliError;
use crate::followers::{self, SyncError, Syncer};

#[derive(Debug, Subcommand)]
pub enum FollowersAction {
    /// Import every follower from WeChat (user/get, user/info/batchget), or resume a sync that
    /// stopped midway; followers no longer following are marked so at the end.
    Sync,
    /// Read the account's follower tags from WeChat and list them.
    Tags,
    /// Tag followers on WeChat (members/batchtagging) and here.
    Tag {
        /// The tag's id (see `wxportal followers tags`).
        tag: i64,
        /// The followers' OpenIDs.
        #[arg(required = true)]
        openids: Vec<String>,
    },
}

/// Runs a `followers` subcommand; the JSON to print.
pub async fn run(action: FollowersAction) -> Result<String, CliError> {
    let (config, store, account) = super::account_context().await?;
    let result = match action {
        FollowersAction::Sync => Syncer::new(store.clone(), account, config.sync_rate)
            .run()
            .await
            .map(|r| {
                json!({
                    "resumed": r.resumed,
                    "total": r.total,
                    "seen": r.seen,
                    "unfollowed": r.unfollowed,
                    "tags": r.tags,
                })
                .to_string()
            })
            .map_err(|e| failed("syncing followers", e)),
        FollowersAction::Tags => followers::refresh_tags(&store, &account)
            .await
            .map(|tags| {
                json!(
                    tags.iter()
                        .map(|t| json!({"id": t.id, "name": t.name, "count": t.count}))
                        .collect::<Vec<_>>()
                )
                .to_string()
            })
            .map_err(|e| failed("reading the tags", e)),
        FollowersAction::Tag { tag, openids } => {
            followers::tag_followers(&store, &account, tag, &openids)
                .await
                .map(|()| json!({"tag": tag, "tagged": openids.len()}).to_string())
                .map_err(|e| failed("tagging", e))
        }
    };
    store.close().await;
    result
}

fn failed(what: &'static str, e: SyncError) -> CliError {
    match e {
        SyncError::Api(source) => CliError::WeChat { what, source },
        SyncError::Store(e) => e.into(),
        other => CliError::Refused(other.to_string()),
    }
}
