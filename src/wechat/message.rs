//! Inbound messages and events (docs/wechat.md §3) as typed values. Unknown types and events are kept.

use super::xml::{XmlError, XmlFields};

/// One message or event pushed by WeChat, with every field it carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// `ToUserName`: the account's own id (`gh_…`).
    pub to: String,
    /// `FromUserName`: the follower's OpenID.
    pub from: String,
    /// `CreateTime`, unix seconds.
    pub create_time: i64,
    pub kind: MessageKind,
    /// Every element of the XML, typed or not.
    pub fields: XmlFields,
}

/// The `MsgType` and what it carries.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageKind {
    Text {
        content: String,
        msg_id: String,
        /// `bizmsgmenuid`: set when the follower tapped a menu inside a customer-service message.
        menu_id: Option<String>,
    },
    Image {
        pic_url: String,
        media_id: String,
        msg_id: String,
    },
    Voice {
        media_id: String,
        format: String,
        recognition: Option<String>,
        msg_id: String,
    },
    Video {
        media_id: String,
        thumb_media_id: String,
        msg_id: String,
    },
    ShortVideo {
        media_id: String,
        thumb_media_id: String,
        msg_id: String,
    },
    Location {
        x: String,
        y: String,
        scale: String,
        label: String,
        msg_id: String,
    },
    Link {
        title: String,
        description: String,
        url: String,
        msg_id: String,
    },
    Event(Event),
    /// A `MsgType` this version does not know; its fields are in [`Inbound::fields`].
    Unknown {
        msg_type: String,
    },
}

/// The `Event` of a `MsgType=event` push.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new follower; from a parametric QR code `scene` is set (`qrscene_` removed).
    Subscribe {
        scene: Option<String>,
        ticket: Option<String>,
    },
    Unsubscribe,
    /// A follower scanned a parametric QR code.
    Scan {
        scene: String,
        ticket: String,
    },
    Location {
        latitude: String,
        longitude: String,
        precision: String,
    },
    Click {
        key: String,
    },
    View {
        url: String,
        menu_id: String,
    },
    ScancodePush {
        key: String,
        scan_type: String,
        scan_result: String,
    },
    ScancodeWaitmsg {
        key: String,
        scan_type: String,
        scan_result: String,
    },
    PicSysphoto {
        key: String,
        count: String,
    },
    PicPhotoOrAlbum {
        key: String,
        count: String,
    },
    PicWeixin {
        key: String,
        count: String,
    },
    LocationSelect {
        key: String,
        location_x: String,
        location_y: String,
        scale: String,
        label: String,
        poiname: String,
    },
    ViewMiniprogram {
        page_path: String,
        menu_id: String,
    },
    TemplateSendJobFinish {
        msg_id: String,
        status: String,
    },
    MassSendJobFinish {
        msg_id: String,
        status: String,
    },
    /// An event this version does not know; its fields are in [`Inbound::fields`].
    Unknown {
        event: String,
    },
}

impl Inbound {
    /// Builds the typed message from parsed XML. Only the envelope fields are required.
    pub(crate) fn from_fields(fields: XmlFields) -> Result<Self, XmlError> {
        let to = fields.require("ToUserName")?.to_owned();
        let from = fields.require("FromUserName")?.to_owned();
        let create_time = fields
            .require("CreateTime")?
            .trim()
            .parse()
            .map_err(|_| XmlError::Syntax("CreateTime is not an integer".into()))?;
        let msg_type = fields.require("MsgType")?.to_owned();
        let t = |p: &str| fields.text(p);
        let msg_id = t("MsgId");
        let kind = match msg_type.as_str() {
            "text" => MessageKind::Text {
                content: t("Content"),
                msg_id,
                menu_id: fields.get("bizmsgmenuid").map(str::to_owned),
            },
            "image" => MessageKind::Image {
                pic_url: t("PicUrl"),
                media_id: t("MediaId"),
                msg_id,
            },
            "voice" => MessageKind::Voice {
                media_id: t("MediaId"),
                format: t("Format"),
                recognition: fields.get("Recognition").map(str::to_owned),
                msg_id,
            },
            "video" => MessageKind::Video {
                media_id: t("MediaId"),
                thumb_media_id: t("ThumbMediaId"),
                msg_id,
            },
            "shortvideo" => MessageKind::ShortVideo {
                media_id: t("MediaId"),
                thumb_media_id: t("ThumbMediaId"),
                msg_id,
            },
            "location" => MessageKind::Location {
                x: t("Location_X"),
                y: t("Location_Y"),
                scale: t("Scale"),
                label: t("Label"),
                msg_id,
            },
            "link" => MessageKind::Link {
                title: t("Title"),
                description: t("Description"),
                url: t("Url"),
                msg_id,
            },
            "event" => MessageKind::Event(Event::from_fields(&fields)),
            _ => MessageKind::Unknown { msg_type },
        };
        Ok(Self {
            to,
            from,
            create_time,
            kind,
            fields,
        })
    }

    /// Parses XML text into a typed message.
    pub fn parse(xml: &str) -> Result<Self, XmlError> {
        Self::from_fields(XmlFields::parse(xml)?)
    }

    /// The `MsgType` as WeChat spells it.
    pub fn msg_type(&self) -> &str {
        self.fields.get("MsgType").unwrap_or_default()
    }

    /// The `Event` as WeChat spells it, for events.
    pub fn event_name(&self) -> Option<&str> {
        match self.kind {
            MessageKind::Event(_) => self.fields.get("Event"),
            _ => None,
        }
    }

    /// The `MsgId` (`MsgID` in job notifications), when the push carries one.
    pub fn msg_id(&self) -> Option<&str> {
        self.fields
            .get("MsgId")
            .or_else(|| self.fields.get("MsgID"))
            .filter(|id| !id.is_empty())
    }

    /// The retry-deduplication key (docs/wechat.md §3): messages by `MsgId`, events by sender, time and event.
    pub fn dedup_key(&self) -> String {
        match (&self.kind, self.msg_id()) {
            (MessageKind::Event(_), _) | (_, None) => format!(
                "e:{}:{}:{}:{}",
                self.from,
                self.create_time,
                self.msg_type(),
                self.fields.get("Event").unwrap_or_default()
            ),
            // With the sender: nobody can claim another follower's MsgId before it arrives.
            (_, Some(id)) => format!("m:{}:{id}", self.from),
        }
    }
}

impl Event {
    fn from_fields(f: &XmlFields) -> Self {
        let t = |p: &str| f.text(p);
        let name = t("Event");
        let key = t("EventKey");
        let scan = || (t("ScanCodeInfo/ScanType"), t("ScanCodeInfo/ScanResult"));
        let count = || t("SendPicsInfo/Count");
        // WeChat's own spelling varies in case between events (SCAN, LOCATION, CLICK vs subscribe).
        match name.to_ascii_lowercase().as_str() {
            "subscribe" => Self::Subscribe {
                scene: f
                    .get("EventKey")
                    .filter(|k| !k.is_empty())
                    .map(|k| k.strip_prefix("qrscene_").unwrap_or(k).to_owned()),
                ticket: f.get("Ticket").filter(|k| !k.is_empty()).map(str::to_owned),
            },
            "unsubscribe" => Self::Unsubscribe,
            "scan" => Self::Scan {
                scene: key,
                ticket: t("Ticket"),
            },
            "location" => Self::Location {
                latitude: t("Latitude"),
                longitude: t("Longitude"),
                precision: t("Precision"),
            },
            "click" => Self::Click { key },
            "view" => Self::View {
                url: key,
                menu_id: t("MenuId"),
            },
            "scancode_push" => {
                let (scan_type, scan_result) = scan();
                Self::ScancodePush {
                    key,
                    scan_type,
                    scan_result,
                }
            }
            "scancode_waitmsg" => {
                let (scan_type, scan_result) = scan();
                Self::ScancodeWaitmsg {
                    key,
                    scan_type,
                    scan_result,
                }
            }
            "pic_sysphoto" => Self::PicSysphoto {
                key,
                count: count(),
            },
            "pic_photo_or_album" => Self::PicPhotoOrAlbum {
                key,
                count: count(),
            },
            "pic_weixin" => Self::PicWeixin {
                key,
                count: count(),
            },
            "location_select" => Self::LocationSelect {
                key,
                location_x: t("SendLocationInfo/Location_X"),
                location_y: t("SendLocationInfo/Location_Y"),
                scale: t("SendLocationInfo/Scale"),
                label: t("SendLocationInfo/Label"),
                poiname: t("SendLocationInfo/Poiname"),
            },
            "view_miniprogram" => Self::ViewMiniprogram {
                page_path: key,
                menu_id: t("MenuId"),
            },
            "templatesendjobfinish" => Self::TemplateSendJobFinish {
                msg_id: t("MsgID"),
                status: t("Status"),
            },
            "masssendjobfinish" => Self::MassSendJobFinish {
                msg_id: t("MsgID"),
                status: t("Status"),
            },
            _ => Self::Unknown { event: name },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(body: &str) -> String {
        format!(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
             <CreateTime>1700000000</CreateTime>{body}</xml>"
        )
    }

    #[test]
    fn a_text_message_is_typed_and_deduplicated_by_msg_id() {
        let m = Inbound::parse(&envelope(
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content><MsgId>42</MsgId>",
        ))
        .unwrap();
        assert_eq!(
            m.kind,
            MessageKind::Text {
                content: "你好".into(),
                msg_id: "42".into(),
                menu_id: None
            }
        );
        assert_eq!(m.dedup_key(), "m:o1:42");
    }

    #[test]
    fn a_subscribe_from_a_qr_code_carries_its_scene() {
        let m = Inbound::parse(&envelope(
            "<MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_123</EventKey><Ticket>T</Ticket>",
        ))
        .unwrap();
        assert_eq!(
            m.kind,
            MessageKind::Event(Event::Subscribe {
                scene: Some("123".into()),
                ticket: Some("T".into())
            })
        );
        assert_eq!(m.dedup_key(), "e:o1:1700000000:event:subscribe");
    }

    #[test]
    fn unknown_types_and_events_are_kept() {
        let m = Inbound::parse(&envelope("<MsgType>hologram</MsgType><Beam>1</Beam>")).unwrap();
        assert_eq!(
            m.kind,
            MessageKind::Unknown {
                msg_type: "hologram".into()
            }
        );
        assert_eq!(m.fields.get("Beam"), Some("1"));
        let e =
            Inbound::parse(&envelope("<MsgType>event</MsgType><Event>teleport</Event>")).unwrap();
        assert_eq!(
            e.kind,
            MessageKind::Event(Event::Unknown {
                event: "teleport".into()
            })
        );
    }

    #[test]
    fn the_envelope_is_required() {
        assert_eq!(
            Inbound::parse("<xml><MsgType>text</MsgType></xml>").unwrap_err(),
            XmlError::Missing("ToUserName")
        );
        assert!(Inbound::parse(&envelope("<Content>x</Content>")).is_err());
        assert!(
            Inbound::parse(
                "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>"
            )
            .is_err()
        );
    }
}
