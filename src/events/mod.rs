//! Event webhooks out: what happens on the account (messages, follows, scans, clicks, template
//! deliveries, sign-ins) told to the account's own systems as signed JSON (docs/events.md).
//!
//! An event is queued in the same commit as what it reports, delivered by [`Deliverer`] once per
//! endpoint, retried for a day, and in order per follower. Signatures follow the Standard Webhooks
//! specification ([`signature`]).

mod deliver;
pub mod endpoints;
pub mod signature;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::json;

pub use crate::store::{EventType, NewEvent};
use crate::store::{Profile, Store, StoreError};
use crate::wechat::{Event, Inbound, MessageKind};
pub use deliver::Deliverer;

/// How often an instance rereads which event types some endpoint wants (an endpoint added on another
/// instance is told of events from then on).
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Which event types some enabled endpoint wants, kept in memory: a message whose type nobody wants
/// costs the webhook nothing.
#[derive(Debug)]
pub struct Subscriptions {
    store: Store,
    /// One bit per [`EventType::ALL`] entry.
    wanted: AtomicU32,
}

fn bit(t: EventType) -> u32 {
    let index = EventType::ALL
        .iter()
        .position(|x| *x == t)
        .expect("every type is in ALL");
    1 << index
}

impl Subscriptions {
    pub async fn load(store: Store) -> Result<Arc<Self>, StoreError> {
        let subscriptions = Arc::new(Self {
            store,
            wanted: AtomicU32::new(0),
        });
        subscriptions.reload().await?;
        Ok(subscriptions)
    }

    /// Reads the endpoints again: after an edit here, and every [`WATCH_INTERVAL`].
    pub(crate) async fn reload(&self) -> Result<(), StoreError> {
        let types = self.store.subscribed_event_types().await?;
        let wanted = types.into_iter().map(bit).fold(0, |a, b| a | b);
        self.wanted.store(wanted, Ordering::Relaxed);
        Ok(())
    }

    pub fn wants(&self, t: EventType) -> bool {
        self.wanted.load(Ordering::Relaxed) & bit(t) != 0
    }

    /// The event `msg` reports, if some endpoint wants its type (built only then).
    pub fn event_of(&self, msg: &Inbound) -> Option<NewEvent> {
        event_if(msg, |t| self.wants(t))
    }

    pub async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        loop {
            tick.tick().await;
            if let Err(e) = self.reload().await {
                if self.store.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "rereading the event endpoints failed");
            }
        }
    }
}

/// The event a message or event pushed by WeChat reports, if it is one endpoints can ask for.
/// `data.message_id` is added when the message is stored.
pub fn of_inbound(msg: &Inbound) -> Option<NewEvent> {
    event_if(msg, |_| true)
}

/// [`of_inbound`], made only when `wanted` says its type is: the webhook builds no event that no
/// endpoint asked for.
fn event_if(msg: &Inbound, wanted: impl Fn(EventType) -> bool) -> Option<NewEvent> {
    let (event_type, extra) = match &msg.kind {
        MessageKind::Event(Event::Subscribe { scene, .. }) => {
            (EventType::Subscribe, json!({ "scene": scene }))
        }
        MessageKind::Event(Event::Unsubscribe) => (EventType::Unsubscribe, json!({})),
        MessageKind::Event(Event::Scan { scene, .. }) => {
            (EventType::Scan, json!({ "scene": scene }))
        }
        MessageKind::Event(Event::Click { key }) => (EventType::Click, json!({ "key": key })),
        MessageKind::Event(Event::TemplateSendJobFinish { msg_id, status }) => (
            EventType::TemplateFinish,
            json!({ "msgid": msg_id, "status": status }),
        ),
        MessageKind::Event(_) => return None,
        MessageKind::Text { content, .. } => (EventType::Message, json!({ "content": content })),
        _ => (EventType::Message, json!({})),
    };
    if !wanted(event_type) {
        return None;
    }
    let mut data = json!({
        "openid": msg.from,
        "account": msg.to,
        "msg_type": msg.msg_type(),
        "event": msg.event_name(),
        "msg_id": msg.msg_id(),
        "created_at": msg.create_time,
        "fields": msg.fields.to_json(),
    });
    if let (Some(data), Some(extra)) = (data.as_object_mut(), extra.as_object()) {
        data.extend(extra.clone());
    }
    Some(NewEvent {
        event_type,
        openid: msg.from.clone(),
        data,
    })
}

/// The event of a follower's sign-in on the portal: who, with which scope, and the profile WeChat
/// shared (`snsapi_userinfo` only).
pub fn oauth_signin(
    openid: &str,
    unionid: Option<&str>,
    scope: &str,
    profile: Option<&Profile>,
) -> NewEvent {
    NewEvent {
        event_type: EventType::OauthSignin,
        openid: openid.to_owned(),
        data: json!({
            "openid": openid,
            "unionid": unionid.or(profile.and_then(|p| p.unionid.as_deref())),
            "scope": scope,
            "nickname": profile.map(|p| &p.nickname),
            "headimgurl": profile.map(|p| &p.headimgurl),
            "signed_in_at": crate::time::unix_now(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound(xml: &str) -> Inbound {
        Inbound::parse(xml).unwrap()
    }

    #[test]
    fn a_text_message_is_a_message_event_with_its_content() {
        let event = of_inbound(&inbound(
            "<xml><ToUserName>gh_a</ToUserName><FromUserName>oF</FromUserName><CreateTime>1700000000</CreateTime>\
             <MsgType>text</MsgType><Content>你好</Content><MsgId>42</MsgId></xml>",
        ))
        .unwrap();
        assert_eq!(event.event_type, EventType::Message);
        assert_eq!(event.openid, "oF");
        assert_eq!(event.data["content"], "你好");
        assert_eq!(event.data["msg_id"], "42");
        assert_eq!(event.data["created_at"], 1_700_000_000);
        assert_eq!(event.data["fields"]["Content"], "你好");
    }

    #[test]
    fn events_endpoints_cannot_ask_for_report_nothing() {
        let location = inbound(
            "<xml><ToUserName>gh_a</ToUserName><FromUserName>oF</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>event</MsgType><Event>LOCATION</Event><Latitude>1</Latitude><Longitude>2</Longitude>\
             <Precision>3</Precision></xml>",
        );
        assert_eq!(of_inbound(&location), None);
        let click = of_inbound(&inbound(
            "<xml><ToUserName>gh_a</ToUserName><FromUserName>oF</FromUserName><CreateTime>1</CreateTime>\
             <MsgType>event</MsgType><Event>CLICK</Event><EventKey>MENU_1</EventKey></xml>",
        ))
        .unwrap();
        assert_eq!(
            (click.event_type, click.data["key"].as_str()),
            (EventType::Click, Some("MENU_1"))
        );
    }
}
