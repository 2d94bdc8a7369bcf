//! The account's followers as WeChat lists them: `user/get` (10,000 OpenIDs a page, with
//! `next_openid`), `user/info/batchget` (100 at a time), follower tags (`tags/get`,
//! `tags/members/batchtagging`). The roster is whatever the test or the demo set; `user/info/batchget`
//! describes each follower through the directory, as `user/info` does.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::account::with_token;
use super::{FakeWeChat, answer, error, lock, ok};

type Params = Query<HashMap<String, String>>;

/// OpenIDs per `user/get` page, as WeChat gives.
const PAGE: usize = 10_000;

/// The followers, in the order `user/get` lists them, and the tags.
#[derive(Debug, Default)]
pub(super) struct Roster {
    openids: Vec<String>,
    position: HashMap<String, usize>,
    tags: std::collections::BTreeMap<i64, String>,
    /// Tags set through `batchtagging`, on top of what the directory says.
    tagged: HashMap<String, Vec<i64>>,
}

impl FakeWeChat {
    /// The account's followers, in `user/get`'s order.
    pub fn set_roster(&self, openids: Vec<String>) {
        let mut roster = lock(&self.state.roster);
        roster.position = openids
            .iter()
            .enumerate()
            .map(|(i, o)| (o.clone(), i))
            .collect();
        roster.openids = openids;
    }

    /// A follower tag the account has.
    pub fn add_tag(&self, id: i64, name: &str) {
        lock(&self.state.roster).tags.insert(id, name.to_owned());
    }

    /// The tags `batchtagging` set on `openid`.
    pub fn tagged(&self, openid: &str) -> Vec<i64> {
        lock(&self.state.roster)
            .tagged
            .get(openid)
            .cloned()
            .unwrap_or_default()
    }
}

/// `GET /cgi-bin/user/get?next_openid=`: the page after `next_openid` (from the start without it).
pub(crate) async fn list(State(wechat): State<FakeWeChat>, Query(q): Params) -> Response {
    if let Err(answer) = with_token(&wechat, "/cgi-bin/user/get", &q).await {
        return answer;
    }
    let roster = lock(&wechat.state.roster);
    let start = match q.get("next_openid").map(String::as_str) {
        None | Some("") => 0,
        Some(after) => match roster.position.get(after) {
            Some(i) => i + 1,
            None => return error(40003),
        },
    };
    let page: Vec<&String> = roster.openids.iter().skip(start).take(PAGE).collect();
    if page.is_empty() {
        return answer(&json!({ "total": roster.openids.len(), "count": 0, "next_openid": "" }));
    }
    answer(&json!({
        "total": roster.openids.len(),
        "count": page.len(),
        "data": { "openid": page },
        "next_openid": page.last().expect("not empty"),
    }))
}

/// `POST /cgi-bin/user/info/batchget`: up to 100 followers' info.
pub(crate) async fn batch_info(
    State(wechat): State<FakeWeChat>,
    Query(q): Params,
    body: String,
) -> Response {
    if let Err(answer) = with_token(&wechat, "/cgi-bin/user/info/batchget", &q).await {
        return answer;
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return error(47001);
    };
    let Some(list) = request["user_list"].as_array() else {
        return error(47001);
    };
    if list.is_empty() || list.len() > 100 {
        return error(40032);
    }
    let roster = lock(&wechat.state.roster);
    let mut infos = Vec::with_capacity(list.len());
    for entry in list {
        let openid = entry["openid"].as_str().unwrap_or_default();
        let Some(follower) = (wechat.state.directory)(openid) else {
            return error(40003);
        };
        let mut info = follower.info;
        info["openid"] = openid.into();
        if !roster.openids.is_empty() {
            info["subscribe"] = i32::from(roster.position.contains_key(openid)).into();
        }
        if let Some(tags) = roster.tagged.get(openid) {
            let mut all: Vec<i64> = info["tagid_list"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            all.extend(tags.iter().filter(|t| !all.contains(t)).collect::<Vec<_>>());
            info["tagid_list"] = json!(all);
        }
        infos.push(info);
    }
    answer(&json!({ "user_info_list": infos }))
}

/// `GET /cgi-bin/tags/get`.
pub(crate) async fn tags(State(wechat): State<FakeWeChat>, Query(q): Params) -> Response {
    if let Err(answer) = with_token(&wechat, "/cgi-bin/tags/get", &q).await {
        return answer;
    }
    let roster = lock(&wechat.state.roster);
    let tags: Vec<Value> = roster
        .tags
        .iter()
        .map(|(id, name)| {
            let count = roster.tagged.values().filter(|t| t.contains(id)).count();
            json!({ "id": id, "name": name, "count": count })
        })
        .collect();
    answer(&json!({ "tags": tags }))
}

/// `POST /cgi-bin/tags/members/batchtagging`: at most 50 followers, an existing tag.
pub(crate) async fn batch_tag(
    State(wechat): State<FakeWeChat>,
    Query(q): Params,
    body: String,
) -> Response {
    if let Err(answer) = with_token(&wechat, "/cgi-bin/tags/members/batchtagging", &q).await {
        return answer;
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return error(47001);
    };
    let openids: Vec<&str> = request["openid_list"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if openids.is_empty() || openids.len() > 50 {
        return error(40032);
    }
    let Some(tag) = request["tagid"].as_i64() else {
        return error(45159);
    };
    let mut roster = lock(&wechat.state.roster);
    if !roster.tags.contains_key(&tag) {
        return error(45159);
    }
    if openids
        .iter()
        .any(|o| (wechat.state.directory)(o).is_none())
    {
        return error(40003);
    }
    for openid in openids {
        let tags = roster.tagged.entry(openid.to_owned()).or_default();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    ok()
}
