//! `wxportal copy`: moves an installation between databases, and checks that it arrived.

use super::CliError;
use crate::config::SqliteSync;
use crate::store::{self, Store, redact_url};

/// Copies every table from `from` to `to`; the per-table counts to print.
pub async fn run(from: &str, to: &str, force: bool) -> Result<String, CliError> {
    if from.trim() == to.trim() {
        return Err(CliError::Refused(
            "--from and --to name the same database".into(),
        ));
    }
    let source = Store::connect(from, SqliteSync::Full).await?;
    let target = Store::connect(to, SqliteSync::Full).await?;
    let result = copy(&source, &target, force).await;
    source.close().await;
    target.close().await;
    let lines = result?;
    Ok(format!(
        "copied {} ({}) to {} ({}):\n{lines}",
        redact_url(from),
        source.backend().as_str(),
        redact_url(to),
        target.backend().as_str()
    ))
}

async fn copy(source: &Store, target: &Store, force: bool) -> Result<String, CliError> {
    let was_empty = !target.holds_data().await?;
    if !was_empty && !force {
        return Err(CliError::Refused(
            "the target already holds followers, messages, operators or sessions; pass --force to copy \
             into it anyway (rows with the same key are overwritten, the others kept)"
                .into(),
        ));
    }
    let counts = store::copy(source, target).await?;
    let mut lines = String::new();
    let mut short = Vec::new();
    for count in &counts {
        // Into an empty database every table must match; into a used one, hold at least the source.
        let complete = if was_empty {
            count.target == count.source
        } else {
            count.target >= count.source
        };
        if !complete {
            short.push(count.table);
        }
        lines.push_str(&format!(
            "  {:<20} {:>10} → {:>10}{}\n",
            count.table,
            count.source,
            count.target,
            if complete { "" } else { "  MISMATCH" }
        ));
    }
    if !short.is_empty() {
        return Err(CliError::Refused(format!(
            "{lines}the counts differ for {}: the copy is incomplete",
            short.join(", ")
        )));
    }
    lines.push_str("counts verified");
    Ok(lines)
}
