//! `/admin/users`: the follower list (search, filters, sorting, keyset pages), its CSV export, and one
//! follower's detail page.

use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;

use super::conversation::{self, Conversation};
use super::frame::{Frame, Nav, not_found, pretty_json, see_other};
use crate::store::{
    Authorized, FollowerTag, Store, SyncRun, SyncState, User, UserCursor, UserQuery, UserSort,
};
use crate::time::beijing_time;
use crate::time::unix_now;
use crate::web::error::AppError;
use crate::web::state::AppState;
use crate::web::ui::{Layout, is_image_url, render};

pub(crate) const PAGE_SIZE: i64 = 50;
/// Rows per database read while streaming the CSV.
const EXPORT_CHUNK: i64 = 1000;

/// The list's query string, as the filter form sends it.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ListParams {
    #[serde(default)]
    pub(crate) q: String,
    #[serde(default)]
    pub(crate) subscribed: String,
    #[serde(default)]
    pub(crate) authorized: String,
    /// A follower tag's id.
    #[serde(default)]
    pub(crate) tag: String,
    #[serde(default)]
    pub(crate) sort: String,
    #[serde(default)]
    pub(crate) after: String,
}

const SORTS: [(&str, UserSort, &str); 4] = [
    ("last_seen", UserSort::LastSeenDesc, "最近活跃 · last seen"),
    (
        "last_seen_asc",
        UserSort::LastSeenAsc,
        "最久未活跃 · least recently seen",
    ),
    ("first_seen", UserSort::FirstSeenDesc, "最新关注 · newest"),
    (
        "first_seen_asc",
        UserSort::FirstSeenAsc,
        "最早关注 · oldest",
    ),
];

impl ListParams {
    /// The store query; values the form never sends are ignored rather than refused.
    pub(crate) fn query(&self, limit: i64) -> UserQuery {
        let sort = SORTS
            .iter()
            .find(|(name, _, _)| *name == self.sort)
            .map_or_else(UserSort::default, |s| s.1);
        UserQuery {
            search: Some(self.q.trim().to_owned()).filter(|q| !q.is_empty()),
            subscribed: match self.subscribed.as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            },
            authorized: match self.authorized.as_str() {
                "userinfo" => Some(Authorized::Userinfo),
                "base" => Some(Authorized::Base),
                "any" => Some(Authorized::Any),
                "never" => Some(Authorized::Never),
                _ => None,
            },
            tag: self.tag.parse().ok(),
            sort,
            after: self.after.split_once('.').and_then(|(at, openid)| {
                Some(UserCursor {
                    at: at.parse().ok()?,
                    openid: openid.to_owned(),
                })
            }),
            limit,
        }
    }

    /// This list's query string with another cursor (`None`: the first page).
    pub(crate) fn link(&self, after: Option<&str>) -> String {
        let mut pairs = vec![
            ("q", self.q.as_str()),
            ("subscribed", &self.subscribed),
            ("authorized", &self.authorized),
            ("tag", &self.tag),
            ("sort", &self.sort),
        ];
        if let Some(after) = after {
            pairs.push(("after", after));
        }
        let pairs: Vec<_> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// One follower as a list row.
struct Row {
    openid: String,
    nickname: String,
    avatar: Option<String>,
    subscribed: bool,
    scope: &'static str,
    region: String,
    first_seen: String,
    last_seen: String,
}

fn scope_label(scope: Option<&str>) -> &'static str {
    match scope {
        Some("snsapi_userinfo") => "授权资料",
        Some("snsapi_base") => "静默授权",
        Some(_) => "其他",
        None => "未授权",
    }
}

fn region(u: &User) -> String {
    [&u.country, &u.province, &u.city]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

impl From<&User> for Row {
    fn from(u: &User) -> Self {
        Self {
            openid: u.openid.clone(),
            nickname: u.nickname.clone().unwrap_or_default(),
            avatar: u.headimgurl.clone().filter(|url| is_image_url(url)),
            subscribed: u.subscribed,
            scope: scope_label(u.scope.as_deref()),
            region: region(u),
            first_seen: beijing_time(u.first_seen_at),
            last_seen: beijing_time(u.last_seen_at),
        }
    }
}

/// The most matches counted exactly.
const COUNT_CAP: i64 = 1_000;

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListTemplate {
    layout: Layout,
    nav: Nav,
    params: ListParams,
    sorts: Vec<(&'static str, &'static str)>,
    rows: Vec<Row>,
    /// How many match, on the first page ("1000+" past the count's cap).
    matching: Option<String>,
    next: Option<String>,
    first: Option<String>,
    export: String,
    /// The account's follower tags, to filter by.
    tags: Vec<FollowerTag>,
    /// The follower sync, in words, if one ever ran.
    sync: Option<String>,
    /// Whether a sync can be started (the AppSecret is set).
    can_sync: bool,
}

/// The sync's progress in words.
fn sync_words(run: &SyncRun) -> String {
    let when = |t: Option<i64>| t.map(beijing_time).unwrap_or_default();
    match run.state {
        // Claimed, before WeChat has said how many follow.
        SyncState::Running if run.total == 0 => format!(
            "同步中 · syncing (始于 · since {})",
            beijing_time(run.started_at)
        ),
        SyncState::Running => format!(
            "同步中 · syncing: {} / {} (始于 · since {})",
            run.seen,
            run.total,
            beijing_time(run.started_at)
        ),
        SyncState::Done => format!(
            "上次同步 · last sync {}: {} 位关注中 · following, {} 位已取关 · left",
            when(run.finished_at),
            run.seen,
            run.unfollowed
        ),
        SyncState::Failed => format!(
            "同步中断 · sync stopped at {} / {} ({}): {} — 下次从中断处继续 · the next run resumes there",
            run.seen,
            run.total,
            when(run.finished_at),
            run.last_error.as_deref().unwrap_or_default()
        ),
    }
}

/// Starts a follower sync (or resumes one that stopped midway) and walks it in the background. The run
/// is claimed before the answer, so the list it leads back to already shows it running.
pub async fn sync(State(app): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    if app.account.credentials.configured()
        && let Some(run) = app.syncer.claim().await?
    {
        let syncer = std::sync::Arc::clone(&app.syncer);
        tracing::info!(admin = %frame.nav.admin, "follower sync started from the admin area");
        tokio::spawn(async move {
            let _ = syncer.finish(run).await;
        });
    }
    Ok(see_other("/admin/users"))
}

#[derive(Debug, Deserialize)]
pub(crate) struct TagForm {
    tag: i64,
}

/// Tags the follower on WeChat (`members/batchtagging`) and here.
pub async fn tag(
    State(app): State<AppState>,
    frame: Frame,
    Path(openid): Path<String>,
    axum::Form(form): axum::Form<TagForm>,
) -> Result<Response, AppError> {
    if app.store.user(&openid).await?.is_none() {
        return Err(not_found("粉丝"));
    }
    crate::followers::tag_followers(
        &app.store,
        &app.account,
        form.tag,
        std::slice::from_ref(&openid),
    )
    .await
    .map_err(|e| match e {
        crate::followers::SyncError::Store(e) => AppError::from(e),
        other => crate::web::error::ErrorPage::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "未打标签 · Not tagged",
            "微信没有接受这个标签。",
            &other.to_string(),
        )
        .retry(format!("/admin/users/{}", urlencoding::encode(&openid)))
        .into(),
    })?;
    tracing::info!(admin = %frame.nav.admin, tag = form.tag, "follower tagged");
    Ok(see_other(&format!(
        "/admin/users/{}",
        urlencoding::encode(&openid)
    )))
}

pub async fn list(
    State(app): State<AppState>,
    frame: Frame,
    Query(params): Query<ListParams>,
) -> Result<Response, AppError> {
    let query = params.query(PAGE_SIZE + 1);
    let mut users = app.store.list_users(&query).await?;
    let more = users.len() as i64 > PAGE_SIZE;
    users.truncate(PAGE_SIZE as usize);
    // Counting reads the matches: done on the first page only, only when not already known, and only
    // up to a cap, so a search matching most of a million followers costs what one matching a thousand does.
    let matching = match (&query.after, more) {
        (Some(_), _) => None,
        (None, false) => Some(users.len().to_string()),
        (None, true) => Some(
            match app.store.count_matching_users(&query, COUNT_CAP).await? {
                n if n > COUNT_CAP => format!("{COUNT_CAP}+"),
                n => n.to_string(),
            },
        ),
    };
    let next = users.last().filter(|_| more).map(|u| {
        let cursor = format!("{}.{}", query.sort.key_of(u), u.openid);
        format!("/admin/users?{}", params.link(Some(&cursor)))
    });
    render(&ListTemplate {
        layout: frame.layout,
        nav: frame.nav,
        sorts: SORTS.iter().map(|(k, _, label)| (*k, *label)).collect(),
        rows: users.iter().map(Row::from).collect(),
        matching,
        next,
        first: query
            .after
            .as_ref()
            .map(|_| format!("/admin/users?{}", params.link(None))),
        export: format!("/admin/users.csv?{}", params.link(None)),
        params,
        tags: app.store.follower_tags().await?,
        sync: app
            .store
            .follower_sync()
            .await?
            .filter(|r| r.started_at > 0)
            .map(|r| sync_words(&r)),
        can_sync: app.account.credentials.configured(),
    })
}

const CSV_HEADER: [&str; 14] = [
    "openid",
    "unionid",
    "nickname",
    "sex",
    "country",
    "province",
    "city",
    "subscribed",
    "scope",
    "first_seen",
    "last_seen",
    "first_authorized",
    "last_authorized",
    "headimgurl",
];

/// A spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, tab or CR as a formula: such a
/// nickname is written with a leading `'`, which the spreadsheet shows as text.
fn cell(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

fn csv_rows(users: &[User]) -> Result<Vec<u8>, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(users.len() * 160));
    let time = |t: Option<i64>| t.map(beijing_time).unwrap_or_default();
    for u in users {
        let text = |v: &Option<String>| cell(v.as_deref().unwrap_or_default()).into_owned();
        // Every text column, the OpenID too: it arrives in a push anyone with the Token can sign.
        out.write_record([
            cell(&u.openid).into_owned(),
            text(&u.unionid),
            text(&u.nickname),
            u.sex.map(|s| s.to_string()).unwrap_or_default(),
            text(&u.country),
            text(&u.province),
            text(&u.city),
            if u.subscribed { "1" } else { "0" }.to_owned(),
            text(&u.scope),
            beijing_time(u.first_seen_at),
            beijing_time(u.last_seen_at),
            time(u.first_authorized_at),
            time(u.last_authorized_at),
            text(&u.headimgurl),
        ])?;
    }
    out.into_inner().map_err(|e| e.into_error().into())
}

/// `/admin/users.csv`: every follower matching the list's filters, streamed a thousand rows at a time,
/// UTF-8 with a byte-order mark (without it, Excel reads Chinese as mojibake).
pub async fn export(
    State(app): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Response, AppError> {
    let mut query = params.query(EXPORT_CHUNK);
    query.after = None;
    let mut head = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    head.write_record(CSV_HEADER)?;
    let head = head
        .into_inner()
        .map_err(|e| AppError::Csv(e.into_error().into()))?;

    let pages = futures_util::stream::unfold(Some((app.store.clone(), query)), next_chunk);
    let body = futures_util::stream::once(async move { Ok(Bytes::from(head)) }).chain(pages);
    let filename = format!(
        "followers-{}.csv",
        beijing_time(unix_now())[..10].replace('-', "")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

type ChunkState = Option<(Store, UserQuery)>;

async fn next_chunk(state: ChunkState) -> Option<(Result<Bytes, std::io::Error>, ChunkState)> {
    let (store, mut query) = state?;
    let users = match store.list_users(&query).await {
        Ok(users) if users.is_empty() => return None,
        Ok(users) => users,
        Err(e) => {
            // The response has started; ending the body early tells the client it is incomplete.
            tracing::error!(error = %e, "CSV export failed midway");
            return Some((Err(std::io::Error::other(e)), None));
        }
    };
    let rows = match csv_rows(&users) {
        Ok(rows) => rows,
        Err(e) => return Some((Err(std::io::Error::other(e)), None)),
    };
    let last = users.last().expect("not empty");
    query.after = Some(UserCursor {
        at: query.sort.key_of(last),
        openid: last.openid.clone(),
    });
    Some((Ok(Bytes::from(rows)), Some((store, query))))
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct DetailTemplate {
    layout: Layout,
    nav: Nav,
    row: Row,
    fields: Vec<(&'static str, String)>,
    userinfo: Option<String>,
    conversation: Conversation,
    history: String,
    /// The account's follower tags, to tag the follower with.
    tags: Vec<FollowerTag>,
}

/// A token is a credential: the page shows that there is one, not the token.
fn masked(token: &Option<String>) -> String {
    match token.as_deref() {
        Some(t) if t.len() > 8 => format!("{}…（已隐藏 · hidden）", &t[..6]),
        Some(_) => "（已隐藏 · hidden）".into(),
        None => String::new(),
    }
}

pub async fn detail(
    State(app): State<AppState>,
    frame: Frame,
    Path(openid): Path<String>,
) -> Result<Response, AppError> {
    let user = app
        .store
        .user(&openid)
        .await?
        .ok_or_else(|| not_found("粉丝"))?;
    let came_from = match &user.qr_scene {
        Some(scene) => match app.store.qr_code_by_scene(scene).await? {
            Some(code) => format!("{} · {scene}", code.name),
            None => scene.clone(),
        },
        None => String::new(),
    };
    let conversation = conversation::load(&app, &openid, None).await?;
    let tags = app.store.follower_tags().await?;
    let time = |t: Option<i64>| t.map(beijing_time).unwrap_or_default();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields = vec![
        ("OpenID", user.openid.clone()),
        ("UnionID", text(&user.unionid)),
        ("昵称 · nickname", text(&user.nickname)),
        (
            "性别 · sex",
            user.sex.map(|s| s.to_string()).unwrap_or_default(),
        ),
        ("地区 · region", region(&user)),
        ("头像 · headimgurl", text(&user.headimgurl)),
        ("特权 · privilege", text(&user.privilege)),
        (
            "关注 · subscribed",
            if user.subscribed {
                "是 · yes"
            } else {
                "否 · no"
            }
            .into(),
        ),
        (
            "关注状态更新 · subscription changed",
            time(user.subscription_changed_at),
        ),
        ("关注时间 · subscribe_time", time(user.subscribe_time)),
        ("来源二维码 · came from QR code", came_from),
        ("备注 · remark", text(&user.remark)),
        ("标签 · tags", tag_names(&user, &tags)),
        ("资料读取 · user/info fetched", time(user.info_fetched_at)),
        ("首次出现 · first seen", beijing_time(user.first_seen_at)),
        ("最近活跃 · last seen", beijing_time(user.last_seen_at)),
        ("授权范围 · scope", text(&user.scope)),
        (
            "首次授权 · first authorized",
            time(user.first_authorized_at),
        ),
        ("最近授权 · last authorized", time(user.last_authorized_at)),
        ("access_token", masked(&user.access_token)),
        (
            "access_token 过期 · expires",
            time(user.access_token_expires_at),
        ),
        ("refresh_token", masked(&user.refresh_token)),
        (
            "refresh_token 过期 · expires",
            time(user.refresh_token_expires_at),
        ),
    ];
    let userinfo = user.userinfo_json.as_deref().map(pretty_json);
    render(&DetailTemplate {
        layout: frame.layout,
        nav: frame.nav,
        row: Row::from(&user),
        fields,
        userinfo,
        conversation,
        history: format!("/admin/messages?openid={}", urlencoding::encode(&openid)),
        tags,
    })
}

/// A follower's tags by name (the id where the tag is unknown here).
fn tag_names(user: &User, tags: &[FollowerTag]) -> String {
    let ids: Vec<i64> = user
        .tags
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    ids.iter()
        .map(|id| {
            tags.iter()
                .find(|t| t.id == *id)
                .map_or_else(|| id.to_string(), |t| format!("{} ({id})", t.name))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// Deletes the follower's row and messages. The checkbox must be ticked; a message they send later
/// creates a fresh row.
pub async fn delete(
    State(app): State<AppState>,
    Path(openid): Path<String>,
    axum::Form(form): axum::Form<DeleteForm>,
) -> Result<Response, AppError> {
    if form.confirm != "yes" {
        return Ok(see_other(&format!(
            "/admin/users/{}",
            urlencoding::encode(&openid)
        )));
    }
    if !app.store.delete_user(&openid).await? {
        return Err(not_found("粉丝"));
    }
    tracing::info!("an admin deleted a follower and their messages");
    Ok(see_other("/admin/users"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_text_is_kept() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("-_-"), "'-_-");
        assert_eq!(cell("李雷 😀"), "李雷 😀");
    }

    #[test]
    fn the_cursor_round_trips_through_the_next_link() {
        let params = ListParams {
            q: "李".into(),
            sort: "first_seen_asc".into(),
            after: "1700000000.oAbc_-1".into(),
            ..ListParams::default()
        };
        let q = params.query(10);
        assert_eq!(q.sort, UserSort::FirstSeenAsc);
        assert_eq!(
            q.after,
            Some(UserCursor {
                at: 1_700_000_000,
                openid: "oAbc_-1".into()
            })
        );
        assert_eq!(
            params.link(Some("5.o1")),
            "q=%E6%9D%8E&sort=first_seen_asc&after=5.o1"
        );
    }
}
