//! The calls an account makes with its access_token (docs/wechat.md §7). Each gets the shared token, and when
//! WeChat refuses it (40001/42001) has it renewed once and tries again.

use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::menu::{CurrentMenu, Menu};
use super::token::Credentials;
use super::{ApiError, Done, FilePart, Upstream};
use crate::wechat::reply::Reply;

/// What `cgi-bin/user/info` returns about a follower.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct UserInfoAnswer {
    #[serde(default)]
    pub subscribe_time: Option<i64>,
    #[serde(default)]
    pub unionid: Option<String>,
    #[serde(default)]
    pub remark: Option<String>,
    #[serde(default)]
    pub tagid_list: Vec<i64>,
}

/// One page of `cgi-bin/user/get`: up to 10,000 OpenIDs, and where the next page starts.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct FollowerPage {
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub data: FollowerPageData,
    #[serde(default)]
    pub next_openid: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct FollowerPageData {
    #[serde(default)]
    pub openid: Vec<String>,
}

/// One follower as `cgi-bin/user/info/batchget` describes them.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BatchInfo {
    pub openid: String,
    #[serde(default)]
    pub subscribe: i64,
    #[serde(flatten)]
    pub info: UserInfoAnswer,
}

/// A follower tag as `cgi-bin/tags/get` lists it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TagAnswer {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub count: i64,
}

/// The most OpenIDs `user/info/batchget` takes at once.
pub(crate) const BATCHGET_MAX: usize = 100;
/// The most OpenIDs `tags/members/batchtagging` takes at once.
pub(crate) const BATCHTAG_MAX: usize = 50;

/// What `cgi-bin/qrcode/create` returns: the ticket, the URL the code encodes, and for a temporary code
/// its lifetime.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct QrTicket {
    pub ticket: String,
    pub url: String,
    #[serde(default)]
    pub expire_seconds: Option<i64>,
}

/// One template as `get_all_private_template` lists it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TemplateAnswer {
    pub template_id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub primary_industry: String,
    #[serde(default)]
    pub deputy_industry: String,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub example: String,
}

/// What `material/add_material` returns for an image.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Material {
    pub media_id: String,
    #[serde(default)]
    pub url: String,
}

/// The account's API.
#[derive(Debug, Clone)]
pub struct Account {
    upstream: Upstream,
    pub credentials: Arc<Credentials>,
}

impl Account {
    pub fn new(upstream: Upstream, credentials: Arc<Credentials>) -> Self {
        Self {
            upstream,
            credentials,
        }
    }

    /// `POST /cgi-bin/menu/create` with a menu already checked by [`Menu::problems`].
    pub(crate) async fn create_menu(&self, menu: &Menu) -> Result<(), ApiError> {
        let body = serde_json::to_value(menu).expect("a menu serializes");
        self.call::<Done>("/cgi-bin/menu/create", &[], Some(&body))
            .await
            .map(drop)
    }

    /// `GET /cgi-bin/get_current_selfmenu_info`: the menu followers see now.
    pub(crate) async fn current_menu(&self) -> Result<CurrentMenu, ApiError> {
        self.call("/cgi-bin/get_current_selfmenu_info", &[], None)
            .await
    }

    /// `GET /cgi-bin/menu/delete`.
    pub(crate) async fn delete_menu(&self) -> Result<(), ApiError> {
        self.call::<Done>("/cgi-bin/menu/delete", &[], None)
            .await
            .map(drop)
    }

    /// `POST /cgi-bin/message/custom/send`: a customer-service message (within 48 h of the follower's
    /// last message). `message` comes from [`custom_message`].
    pub(crate) async fn send_custom(&self, message: &Value) -> Result<(), ApiError> {
        self.call::<Done>("/cgi-bin/message/custom/send", &[], Some(message))
            .await
            .map(drop)
    }

    /// `POST /cgi-bin/qrcode/create` with a string scene: temporary for `expires_in` seconds, or
    /// permanent (docs/wechat.md §10).
    pub(crate) async fn create_qr(
        &self,
        scene: &str,
        expires_in: Option<i64>,
    ) -> Result<QrTicket, ApiError> {
        let scene = json!({ "scene": { "scene_str": scene } });
        let body = match expires_in {
            Some(secs) => json!({
                "expire_seconds": secs, "action_name": "QR_STR_SCENE", "action_info": scene,
            }),
            None => json!({ "action_name": "QR_LIMIT_STR_SCENE", "action_info": scene }),
        };
        self.call("/cgi-bin/qrcode/create", &[], Some(&body)).await
    }

    /// `POST /cgi-bin/message/template/send`; returns WeChat's msgid, which the TEMPLATESENDJOBFINISH
    /// event names later (docs/wechat.md §11).
    pub(crate) async fn send_template(&self, message: &Value) -> Result<String, ApiError> {
        #[derive(Deserialize)]
        struct Sent {
            msgid: Value,
        }
        let sent: Sent = self
            .call("/cgi-bin/message/template/send", &[], Some(message))
            .await?;
        Ok(match sent.msgid {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }

    /// `GET /cgi-bin/template/get_all_private_template`: the account's templates.
    pub(crate) async fn templates(&self) -> Result<Vec<TemplateAnswer>, ApiError> {
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            template_list: Vec<TemplateAnswer>,
        }
        let list: List = self
            .call("/cgi-bin/template/get_all_private_template", &[], None)
            .await?;
        Ok(list.template_list)
    }

    /// `POST /cgi-bin/material/add_material?type=image`: an image as permanent material
    /// (docs/wechat.md §12).
    pub(crate) async fn add_image(&self, file: &FilePart) -> Result<Material, ApiError> {
        self.credentials
            .with_access_token(|token| async move {
                let query = [("access_token", token.as_str()), ("type", "image")];
                let (value, _) = self
                    .upstream
                    .post_file("/cgi-bin/material/add_material", &query, file)
                    .await?;
                Ok(value)
            })
            .await
    }

    /// `GET /cgi-bin/user/info`.
    pub(crate) async fn user_info(&self, openid: &str) -> Result<UserInfoAnswer, ApiError> {
        self.call(
            "/cgi-bin/user/info",
            &[("openid", openid), ("lang", "zh_CN")],
            None,
        )
        .await
    }

    /// `GET /cgi-bin/user/get`: the followers after `next_openid` (from the start when empty).
    pub(crate) async fn followers(&self, next_openid: &str) -> Result<FollowerPage, ApiError> {
        let query: &[(&str, &str)] = if next_openid.is_empty() {
            &[]
        } else {
            &[("next_openid", next_openid)]
        };
        self.call("/cgi-bin/user/get", query, None).await
    }

    /// `POST /cgi-bin/user/info/batchget` for at most [`BATCHGET_MAX`] followers.
    pub(crate) async fn batch_info(&self, openids: &[String]) -> Result<Vec<BatchInfo>, ApiError> {
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            user_info_list: Vec<BatchInfo>,
        }
        let body = json!({ "user_list": openids.iter()
            .map(|o| json!({ "openid": o, "lang": "zh_CN" }))
            .collect::<Vec<_>>() });
        let list: List = self
            .call("/cgi-bin/user/info/batchget", &[], Some(&body))
            .await?;
        Ok(list.user_info_list)
    }

    /// `GET /cgi-bin/tags/get`: the account's follower tags.
    pub(crate) async fn tags(&self) -> Result<Vec<TagAnswer>, ApiError> {
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            tags: Vec<TagAnswer>,
        }
        let list: List = self.call("/cgi-bin/tags/get", &[], None).await?;
        Ok(list.tags)
    }

    /// `POST /cgi-bin/tags/members/batchtagging`: tags at most [`BATCHTAG_MAX`] followers.
    pub(crate) async fn tag_followers(&self, tag: i64, openids: &[String]) -> Result<(), ApiError> {
        let body = json!({ "openid_list": openids, "tagid": tag });
        self.call::<Done>("/cgi-bin/tags/members/batchtagging", &[], Some(&body))
            .await
            .map(drop)
    }

    /// One call with the token, renewed once if WeChat refuses it.
    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        self.credentials
            .with_access_token(|token| async move {
                let mut full = vec![("access_token", token.as_str())];
                full.extend_from_slice(query);
                let (value, _) = match body {
                    Some(body) => self.upstream.post(path, &full, body).await?,
                    None => self.upstream.get(path, &full).await?,
                };
                Ok(value)
            })
            .await
    }
}

/// A passive reply as a customer-service message to `openid`, or `None` for a reply that has no such
/// form (handing over to the customer-service system).
pub(crate) fn custom_message(openid: &str, reply: &Reply) -> Option<Value> {
    let (msgtype, content) = match reply {
        Reply::Text { content } => ("text", json!({ "content": content })),
        Reply::Image { media_id } => ("image", json!({ "media_id": media_id })),
        Reply::Voice { media_id } => ("voice", json!({ "media_id": media_id })),
        Reply::Video {
            media_id,
            title,
            description,
        } => (
            "video",
            json!({ "media_id": media_id, "title": title, "description": description }),
        ),
        Reply::Music {
            title,
            description,
            music_url,
            hq_music_url,
            thumb_media_id,
        } => (
            "music",
            json!({
                "title": title,
                "description": description,
                "musicurl": music_url,
                "hqmusicurl": hq_music_url,
                "thumb_media_id": thumb_media_id,
            }),
        ),
        Reply::News { articles } => (
            "news",
            json!({ "articles": articles.iter().map(|a| json!({
                "title": a.title,
                "description": a.description,
                "url": a.url,
                "picurl": a.pic_url,
            })).collect::<Vec<_>>() }),
        ),
        Reply::TransferCustomerService => return None,
    };
    let mut message = json!({ "touser": openid, "msgtype": msgtype });
    message[msgtype] = content;
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::reply::Article;

    #[test]
    fn replies_become_customer_service_messages() {
        let text = custom_message("o1", &Reply::text("你好 <a href=\"x\">链接</a>")).unwrap();
        assert_eq!(
            text,
            json!({"touser": "o1", "msgtype": "text", "text": {"content": "你好 <a href=\"x\">链接</a>"}})
        );
        let news = custom_message(
            "o1",
            &Reply::News {
                articles: vec![Article {
                    title: "T".into(),
                    description: "D".into(),
                    pic_url: "https://p/1.png".into(),
                    url: "https://u/".into(),
                }],
            },
        )
        .unwrap();
        assert_eq!(news["news"]["articles"][0]["picurl"], "https://p/1.png");
        assert_eq!(custom_message("o1", &Reply::TransferCustomerService), None);
    }
}
