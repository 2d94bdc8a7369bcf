//! `/admin/outbox`: replies sent after the 5-second window and follower-info fetches, with what WeChat
//! said about each (why one is being retried, or why it was given up).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::frame::{Frame, Nav};
use crate::store::{Job, JobKind, JobState};
use crate::time::beijing_time;
use crate::web::error::AppError;
use crate::web::state::AppState;
use crate::web::ui::{Layout, render};

const SHOWN: i64 = 100;
const STATES: [(&str, &str); 5] = [
    (JobState::Queued.as_str(), "等待 · queued"),
    (JobState::Sending.as_str(), "发送中 · sending"),
    (JobState::Done.as_str(), "完成 · done"),
    (JobState::Failed.as_str(), "放弃 · failed"),
    (JobState::Cancelled.as_str(), "取消 · cancelled"),
];

#[derive(Debug, Default, Deserialize)]
pub(crate) struct OutboxParams {
    #[serde(default)]
    state: String,
}

/// One job as a list row.
struct JobRow {
    id: i64,
    kind: &'static str,
    openid: String,
    message_id: Option<i64>,
    state: &'static str,
    attempts: i64,
    created: String,
    /// When it finished, or when it is next due.
    when: String,
    reason: String,
    sent: String,
}

impl From<Job> for JobRow {
    fn from(j: Job) -> Self {
        let when = match j.finished_at {
            Some(t) => beijing_time(t),
            None => format!("下次 · next {}", beijing_time(j.due_at)),
        };
        Self {
            id: j.id,
            kind: match j.kind {
                JobKind::Reply => "客服消息回复 · reply",
                JobKind::UserInfo => "粉丝信息 · user info",
                JobKind::Custom => "人工回复 · operator",
                JobKind::Template => "模板消息 · template",
            },
            openid: j.openid,
            message_id: j.message_id,
            state: j.state.as_str(),
            attempts: j.attempts,
            created: beijing_time(j.created_at),
            when,
            reason: j.last_error.unwrap_or_default(),
            sent: j.sent.unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/outbox.html")]
struct OutboxTemplate {
    layout: Layout,
    nav: Nav,
    params: OutboxParams,
    states: [(&'static str, &'static str); 5],
    jobs: Vec<JobRow>,
}

pub async fn list(
    State(app): State<AppState>,
    frame: Frame,
    Query(params): Query<OutboxParams>,
) -> Result<Response, AppError> {
    let state = JobState::from_text(&params.state);
    let jobs = app.store.list_jobs(state, SHOWN).await?;
    render(&OutboxTemplate {
        layout: frame.layout,
        nav: frame.nav,
        params,
        states: STATES,
        jobs: jobs.into_iter().map(JobRow::from).collect(),
    })
}
