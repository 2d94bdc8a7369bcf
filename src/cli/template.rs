//! `wxportal template`: the account's template messages from a script; output is JSON.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};

use super::CliError;
use crate::config::Config;
use crate::store::{Audience, JobState, Store};
use crate::templates::{self, FieldValue, Filled, TemplateError};
use crate::upstream::account::Account;

#[derive(Debug, Subcommand)]
pub enum TemplateAction {
    /// List the account's templates on WeChat (kept for the admin area) and print them.
    List,
    /// Queue a template message to one follower through the outbox (a running server sends it).
    Send {
        /// The follower's OpenID.
        #[arg(long, value_name = "OPENID")]
        to: String,
        /// The template's id, as `template list` prints it.
        #[arg(long, value_name = "ID")]
        template: String,
        /// The fields as JSON: {"first": {"value": "…", "color": "#173177"}, "remark": "…"}.
        #[arg(long, value_name = "FILE.json")]
        data: PathBuf,
        /// Where tapping the message leads.
        #[arg(long)]
        url: Option<String>,
        /// Wait for WeChat's answer, print it, and exit 0 only if WeChat accepted the message.
        #[arg(long)]
        wait: bool,
        /// With --wait, give up after this many seconds.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        timeout: u64,
    },
}

fn refused(e: TemplateError) -> CliError {
    match e {
        TemplateError::Invalid(problems) => CliError::Refused(format!(
            "nothing was queued:\n  - {}",
            problems.join("\n  - ")
        )),
        TemplateError::WeChat(source) => CliError::WeChat {
            what: "listing the templates",
            source,
        },
        TemplateError::Store(e) => e.into(),
    }
}

/// The data file's fields: WeChat's `{"value", "color"}` objects or plain strings.
fn read_data(file: &PathBuf) -> Result<Vec<(String, FieldValue)>, CliError> {
    let text = std::fs::read_to_string(file).map_err(|source| CliError::Io {
        what: format!("cannot read {}", file.display()),
        source,
    })?;
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text) else {
        return Err(CliError::Refused(format!(
            "{} is not a JSON object of fields",
            file.display()
        )));
    };
    Ok(map
        .into_iter()
        .map(|(name, v)| {
            let text = |v: &Value| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            };
            let value = match &v {
                Value::Object(o) => FieldValue {
                    value: o.get("value").map(text).unwrap_or_default(),
                    color: o.get("color").map(text).unwrap_or_default(),
                },
                other => FieldValue {
                    value: text(other),
                    color: String::new(),
                },
            };
            (name, value)
        })
        .collect())
}

/// Runs a `template` subcommand; the JSON to print.
pub async fn run(action: TemplateAction) -> Result<String, CliError> {
    let (config, store, account) = super::account_context().await?;
    let result = match action {
        TemplateAction::List => templates::refresh(&store, &account)
            .await
            .map_err(refused)
            .map(|list| {
                Value::Array(
                    list.iter()
                        .map(|t| {
                            json!({
                                "template_id": t.template_id,
                                "title": t.title,
                                "primary_industry": t.primary_industry,
                                "deputy_industry": t.deputy_industry,
                                "content": t.content,
                                "fields": templates::fields(&t.content),
                                "example": t.example,
                            })
                        })
                        .collect(),
                )
                .to_string()
            }),
        TemplateAction::Send {
            to,
            template,
            data,
            url,
            wait,
            timeout,
        } => {
            send(
                &store,
                &account,
                &config,
                (&to, &template, &data, url),
                wait.then_some(Duration::from_secs(timeout)),
            )
            .await
        }
    };
    store.close().await;
    result
}

async fn send(
    store: &Store,
    account: &Account,
    config: &Config,
    (to, template, data, url): (&str, &str, &PathBuf, Option<String>),
    wait: Option<Duration>,
) -> Result<String, CliError> {
    let values = read_data(data)?;
    if to.trim().is_empty() || to.len() > 64 {
        return Err(CliError::Refused("--to must be an OpenID".into()));
    }
    let Some(found) = templates::find(store, account, template)
        .await
        .map_err(refused)?
    else {
        return Err(CliError::Refused(format!(
            "the account has no template {template:?} (see `wxportal template list`)"
        )));
    };
    let body = Filled {
        template_id: found.template_id.clone(),
        values,
        url: url.unwrap_or_default(),
        ..Filled::default()
    }
    .body(&found)
    .map_err(refused)?;
    let (campaign, _) = templates::send(
        store,
        config.template_rate,
        &body,
        &Audience::One(to.to_owned()),
        &format!("粉丝 · follower {to}"),
        "cli",
        None,
    )
    .await
    .map_err(refused)?;
    let job = store
        .campaign_jobs(campaign, 1)
        .await?
        .pop()
        .ok_or_else(|| CliError::Refused("the send was not queued".into()))?;
    let Some(limit) = wait else {
        return Ok(
            json!({ "campaign": campaign, "job": job.id, "state": job.state.as_str() }).to_string(),
        );
    };
    let started = std::time::Instant::now();
    loop {
        let now = store
            .campaign_jobs(campaign, 1)
            .await?
            .pop()
            .unwrap_or(job.clone());
        let answer = json!({
            "campaign": campaign,
            "job": now.id,
            "state": now.state.as_str(),
            "msgid": now.msgid,
            "error": now.last_error,
        });
        match now.state {
            JobState::Done => return Ok(answer.to_string()),
            JobState::Failed | JobState::Cancelled => {
                println!("{answer}");
                return Err(CliError::Refused(format!(
                    "WeChat did not accept the message: {}",
                    now.last_error.as_deref().unwrap_or(now.state.as_str())
                )));
            }
            _ if started.elapsed() > limit => {
                return Err(CliError::Refused(format!(
                    "{answer}\nno answer within {} s: is `wxportal serve` running on this database?",
                    limit.as_secs()
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
