//! Template messages (docs/wechat.md §11): the account's templates and `message/template/send`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::account::with_token;
use super::{FakeWeChat, LOG_LEN, answer, error, lock};
use crate::time::unix_now;

/// The templates every stand-in account has: (template_id, title, content).
pub const TEMPLATES: [(&str, &str, &str); 2] = [
    (
        "tmplOrderShipped0000000000000000000000001",
        "订单发货通知",
        "{{first.DATA}}\n订单号：{{keyword1.DATA}}\n快递公司：{{keyword2.DATA}}\n{{remark.DATA}}",
    ),
    (
        "tmplAppointment00000000000000000000000002",
        "预约提醒",
        "{{thing1.DATA}}\n时间：{{time2.DATA}}\n地点：{{thing3.DATA}}",
    ),
];

/// `GET /cgi-bin/template/get_all_private_template`.
pub(crate) async fn list(
    State(wechat): State<FakeWeChat>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    const PATH: &str = "/cgi-bin/template/get_all_private_template";
    if let Err(answer) = with_token(&wechat, PATH, &q).await {
        return answer;
    }
    let list: Vec<Value> = TEMPLATES
        .iter()
        .map(|(id, title, content)| {
            json!({
                "template_id": id,
                "title": title,
                "primary_industry": "IT科技",
                "deputy_industry": "互联网|电子商务",
                "content": content,
                "example": "",
            })
        })
        .collect();
    answer(&json!({ "template_list": list }))
}

/// `POST /cgi-bin/message/template/send`: a known template to a known follower; one who left (their
/// `user/info` says `subscribe: 0`) gets 43004. Like a customer-service message, one that would be
/// accepted is logged as it arrives (before a scripted delay, as WeChat may deliver a message whose
/// answer never reaches the caller); a scripted error takes it out of the log again.
pub(crate) async fn send(
    State(wechat): State<FakeWeChat>,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    const PATH: &str = "/cgi-bin/message/template/send";
    let Ok(message) = serde_json::from_str::<Value>(&body) else {
        return error(47001);
    };
    let to = message["touser"].as_str().unwrap_or_default();
    let follower = (wechat.state.directory)(to);
    let refusal = match &follower {
        None => Some(40003),
        Some(f) if f.info["subscribe"] == 0 => Some(43004),
        Some(_) => {
            let id = message["template_id"].as_str().unwrap_or_default();
            if !TEMPLATES.iter().any(|(known, _, _)| *known == id) {
                Some(40037)
            } else if !message["data"].is_object() {
                Some(47001)
            } else {
                None
            }
        }
    };
    let token = q
        .get("access_token")
        .map(String::as_str)
        .unwrap_or_default();
    let msgid = {
        let mut account = lock(&wechat.state.account);
        let valid = account.tokens.get(token).is_some_and(|&e| e > unix_now());
        (valid && refusal.is_none()).then(|| {
            account.template_msgid += 1;
            account.templates_sent.push_back(message.clone());
            if account.templates_sent.len() > LOG_LEN {
                account.templates_sent.pop_front();
            }
            account.template_msgid
        })
    };
    if let Err(answer) = with_token(&wechat, PATH, &q).await {
        if msgid.is_some() {
            let mut account = lock(&wechat.state.account);
            if let Some(i) = account.templates_sent.iter().rposition(|m| *m == message) {
                account.templates_sent.remove(i);
            }
        }
        return answer;
    }
    if let Some(errcode) = refusal {
        return error(errcode);
    }
    let Some(msgid) = msgid else {
        return error(40001);
    };
    let delivery = lock(&wechat.state.delivery).clone();
    if let Some(deliver) = delivery {
        deliver(to, &message, Some(msgid));
    }
    answer(&json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid }))
}
