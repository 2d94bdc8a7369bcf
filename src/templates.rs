//! Template messages (模板消息, docs/wechat.md §11): the account's templates, a message filled in from
//! one, its preview as WeChat shows it, and campaigns that send it to one follower or to many through
//! the outbox at the configured rate.

use serde_json::{Map, Value, json};

use crate::store::{Audience, NewCampaign, Once, Store, StoreError, Template};
use crate::time::unix_now;
use crate::upstream::ApiError;
use crate::upstream::account::Account;

/// The longest value accepted for one field, in characters.
pub const MAX_VALUE_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The message was refused before any call: every reason.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error("WeChat refused: {0}")]
    WeChat(#[from] ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The fields of a template's content, in order: `{{first.DATA}}` names `first`.
pub fn fields(content: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = content;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find("}}") else { break };
        if let Some(name) = rest[..end].strip_suffix(".DATA") {
            let name = name.trim();
            if !name.is_empty() && !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        rest = &rest[end + 2..];
    }
    names
}

/// One field's value and optional colour (`#RRGGBB`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldValue {
    pub value: String,
    pub color: String,
}

/// A message filled in from a template.
#[derive(Debug, Clone, Default)]
pub struct Filled {
    pub template_id: String,
    /// By field name, in the template's order.
    pub values: Vec<(String, FieldValue)>,
    /// Where tapping the message leads (http or https), if anywhere.
    pub url: String,
    /// A mini-program to open instead: its AppID and page.
    pub miniprogram_appid: String,
    pub miniprogram_page: String,
}

fn is_colour(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl Filled {
    /// template/send's body without `touser`, or every reason it cannot be sent.
    pub fn body(&self, template: &Template) -> Result<Value, TemplateError> {
        let known = fields(&template.content);
        let mut problems = Vec::new();
        let mut data = Map::new();
        for (name, v) in &self.values {
            if !known.contains(name) {
                problems.push(format!("the template has no field {name:?}"));
            }
            if v.value.chars().count() > MAX_VALUE_CHARS {
                problems.push(format!(
                    "{name} is longer than {MAX_VALUE_CHARS} characters"
                ));
            }
            if !v.color.is_empty() && !is_colour(&v.color) {
                problems.push(format!("{name}'s colour must be #RRGGBB"));
            }
            if v.value.is_empty() && v.color.is_empty() {
                continue;
            }
            let mut entry = json!({ "value": v.value });
            if !v.color.is_empty() {
                entry["color"] = v.color.clone().into();
            }
            data.insert(name.clone(), entry);
        }
        if self.values.iter().all(|(_, v)| v.value.trim().is_empty()) {
            problems.push("fill in at least one field".into());
        }
        let url = self.url.trim();
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            problems.push("the link must be an http(s) URL".into());
        }
        let (appid, page) = (self.miniprogram_appid.trim(), self.miniprogram_page.trim());
        if appid.is_empty() != page.is_empty() {
            problems.push("a mini-program target needs both its AppID and its page".into());
        }
        if !problems.is_empty() {
            return Err(TemplateError::Invalid(problems));
        }
        let mut body = json!({ "template_id": template.template_id, "data": data });
        if !url.is_empty() {
            body["url"] = url.into();
        }
        if !appid.is_empty() {
            body["miniprogram"] = json!({ "appid": appid, "pagepath": page });
        }
        Ok(body)
    }
}

/// One line of a preview: the text around the values, and the values with their colours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Value { text: String, color: String },
}

/// The message as WeChat shows it: the content's lines with each field's value in place.
pub fn preview(template: &Template, values: &[(String, FieldValue)]) -> Vec<Vec<Piece>> {
    template
        .content
        .lines()
        .map(|line| {
            let mut pieces = Vec::new();
            let mut rest = line;
            while let Some(start) = rest.find("{{") {
                let Some(end) = rest[start..].find("}}") else {
                    break;
                };
                if start > 0 {
                    pieces.push(Piece::Text(rest[..start].to_owned()));
                }
                let name = rest[start + 2..start + end]
                    .trim_end_matches(".DATA")
                    .trim();
                let value = values.iter().find(|(n, _)| n == name).map(|(_, v)| v);
                pieces.push(Piece::Value {
                    text: value.map(|v| v.value.clone()).unwrap_or_default(),
                    color: value.map(|v| v.color.clone()).unwrap_or_default(),
                });
                rest = &rest[start + end + 2..];
            }
            if !rest.is_empty() {
                pieces.push(Piece::Text(rest.to_owned()));
            }
            pieces
        })
        .collect()
}

/// Lists the account's templates on WeChat and keeps the list.
pub async fn refresh(store: &Store, account: &Account) -> Result<Vec<Template>, TemplateError> {
    let now = unix_now();
    let list: Vec<Template> = account
        .templates()
        .await?
        .into_iter()
        .map(|t| Template {
            template_id: t.template_id,
            title: t.title,
            primary_industry: t.primary_industry,
            deputy_industry: t.deputy_industry,
            content: t.content,
            example: t.example,
            fetched_at: now,
        })
        .collect();
    store.replace_templates(&list).await?;
    Ok(store.templates().await?)
}

/// The stored template `id`, listing the account's templates on WeChat first if it is not stored.
pub async fn find(
    store: &Store,
    account: &Account,
    id: &str,
) -> Result<Option<Template>, TemplateError> {
    if let Some(t) = store.template(id).await? {
        return Ok(Some(t));
    }
    Ok(refresh(store, account)
        .await?
        .into_iter()
        .find(|t| t.template_id == id))
}

/// Queues `body` for `audience` as one campaign at `rate` messages per second; returns its id and how
/// many followers it reaches.
pub async fn send(
    store: &Store,
    rate: i64,
    body: &Value,
    audience: &Audience,
    audience_words: &str,
    created_by: &str,
    once: Option<&Once>,
) -> Result<(i64, i64), TemplateError> {
    let campaign = NewCampaign {
        template_id: body["template_id"].as_str().unwrap_or_default().to_owned(),
        body: body.to_string(),
        audience: audience_words.to_owned(),
        rate,
        created_by: created_by.to_owned(),
    };
    let (id, total) = store.create_campaign(&campaign, audience, once).await?;
    tracing::info!(campaign = id, total, created_by, "template campaign queued");
    Ok((id, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        Template {
            template_id: "T1".into(),
            title: "订单通知".into(),
            primary_industry: "IT".into(),
            deputy_industry: "互联网".into(),
            content: "{{first.DATA}}\n订单号：{{keyword1.DATA}}\n{{remark.DATA}}".into(),
            example: String::new(),
            fetched_at: 0,
        }
    }

    fn v(value: &str, color: &str) -> FieldValue {
        FieldValue {
            value: value.into(),
            color: color.into(),
        }
    }

    #[test]
    fn fields_are_read_from_the_content_in_order() {
        assert_eq!(fields(&template().content), ["first", "keyword1", "remark"]);
        assert_eq!(
            fields("{{thing1.DATA}} {{thing1.DATA}} {{broken"),
            ["thing1"]
        );
    }

    #[test]
    fn a_filled_message_becomes_template_sends_body_or_every_reason() {
        let filled = Filled {
            template_id: "T1".into(),
            values: vec![
                ("first".into(), v("你好", "#FF0000")),
                ("keyword1".into(), v("A-1", "")),
            ],
            url: "https://example.com/o/1".into(),
            ..Filled::default()
        };
        assert_eq!(
            filled.body(&template()).unwrap(),
            json!({"template_id": "T1", "url": "https://example.com/o/1",
                   "data": {"first": {"value": "你好", "color": "#FF0000"}, "keyword1": {"value": "A-1"}}})
        );
        let bad = Filled {
            values: vec![("nope".into(), v("x", "red"))],
            url: "javascript:x".into(),
            miniprogram_appid: "wx1".into(),
            ..filled
        };
        let TemplateError::Invalid(problems) = bad.body(&template()).unwrap_err() else {
            panic!()
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn the_preview_puts_each_value_in_its_line() {
        let lines = preview(&template(), &[("keyword1".into(), v("A-1", "#00FF00"))]);
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            [
                Piece::Text("订单号：".into()),
                Piece::Value {
                    text: "A-1".into(),
                    color: "#00FF00".into()
                }
            ]
        );
    }
}
