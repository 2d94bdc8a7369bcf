//! Passive replies (docs/wechat.md §4) and the encrypted reply envelope (§5), written as XML that stays valid
//! whatever the text holds.

use quick_xml::Writer;
use quick_xml::events::{BytesCData, BytesEnd, BytesStart, BytesText, Event};
use serde::{Deserialize, Serialize};

/// One news article of a `news` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    pub title: String,
    pub description: String,
    pub pic_url: String,
    pub url: String,
}

/// What the account answers to a message, before it is addressed and serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// Text; may contain newlines and `<a href="…">` links, which the client renders.
    Text {
        content: String,
    },
    Image {
        media_id: String,
    },
    Voice {
        media_id: String,
    },
    Video {
        media_id: String,
        title: String,
        description: String,
    },
    Music {
        title: String,
        description: String,
        music_url: String,
        hq_music_url: String,
        thumb_media_id: String,
    },
    /// WeChat shows one article per passive reply.
    News {
        articles: Vec<Article>,
    },
    /// Hands the conversation to the customer-service system.
    TransferCustomerService,
}

impl Reply {
    /// Convenience constructor for a text reply.
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text {
            content: content.into(),
        }
    }

    /// The `MsgType` of this reply.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::Voice { .. } => "voice",
            Self::Video { .. } => "video",
            Self::Music { .. } => "music",
            Self::News { .. } => "news",
            Self::TransferCustomerService => "transfer_customer_service",
        }
    }

    /// The reply XML addressed to `to` (the follower) from `from` (the account), at `create_time`.
    pub fn to_xml(&self, to: &str, from: &str, create_time: i64) -> String {
        let mut x = XmlOut::new();
        x.cdata("ToUserName", to);
        x.cdata("FromUserName", from);
        x.number("CreateTime", create_time);
        x.cdata("MsgType", self.msg_type());
        match self {
            Self::Text { content } => x.cdata("Content", content),
            Self::Image { media_id } => x.wrap("Image", |x| x.cdata("MediaId", media_id)),
            Self::Voice { media_id } => x.wrap("Voice", |x| x.cdata("MediaId", media_id)),
            Self::Video {
                media_id,
                title,
                description,
            } => x.wrap("Video", |x| {
                x.cdata("MediaId", media_id);
                x.cdata("Title", title);
                x.cdata("Description", description);
            }),
            Self::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            } => x.wrap("Music", |x| {
                x.cdata("Title", title);
                x.cdata("Description", description);
                x.cdata("MusicUrl", music_url);
                x.cdata("HQMusicUrl", hq_music_url);
                x.cdata("ThumbMediaId", thumb_media_id);
            }),
            Self::News { articles } => {
                x.number("ArticleCount", articles.len() as i64);
                x.wrap("Articles", |x| {
                    for a in articles {
                        x.wrap("item", |x| {
                            x.cdata("Title", &a.title);
                            x.cdata("Description", &a.description);
                            x.cdata("PicUrl", &a.pic_url);
                            x.cdata("Url", &a.url);
                        });
                    }
                });
            }
            Self::TransferCustomerService => {}
        }
        x.finish()
    }
}

/// The encrypted reply envelope of compatible and safe mode.
pub(crate) fn encrypted_envelope(
    encrypt: &str,
    signature: &str,
    timestamp: &str,
    nonce: &str,
) -> String {
    let mut x = XmlOut::new();
    x.cdata("Encrypt", encrypt);
    x.cdata("MsgSignature", signature);
    x.text("TimeStamp", timestamp);
    x.cdata("Nonce", nonce);
    x.finish()
}

/// Builds a WeChat-style document: `<xml>`, then flat or nested elements.
pub(crate) struct XmlOut(Writer<Vec<u8>>);

impl XmlOut {
    pub(crate) fn new() -> Self {
        let mut w = Writer::new(Vec::with_capacity(512));
        w.write_event(Event::Start(BytesStart::new("xml")))
            .expect("writing to a Vec cannot fail");
        Self(w)
    }

    /// `<name><![CDATA[text]]></name>`; `]]>` is split across sections and characters XML 1.0 cannot
    /// carry at all are dropped, so the document stays well-formed whatever `text` is.
    pub(crate) fn cdata(&mut self, name: &str, text: &str) {
        let clean = xml_chars(text);
        self.wrap(name, |x| {
            for part in BytesCData::escaped(&clean) {
                x.event(Event::CData(part));
            }
        });
    }

    /// `<name>text</name>` with text escaped: for numbers and tokens.
    pub(crate) fn text(&mut self, name: &str, text: &str) {
        let clean = xml_chars(text);
        self.wrap(name, |x| x.event(Event::Text(BytesText::new(&clean))));
    }

    pub(crate) fn number(&mut self, name: &str, n: i64) {
        self.text(name, &n.to_string());
    }

    pub(crate) fn wrap(&mut self, name: &str, inner: impl FnOnce(&mut Self)) {
        self.open(name);
        inner(self);
        self.close(name);
    }

    pub(crate) fn open(&mut self, name: &str) {
        self.event(Event::Start(BytesStart::new(name)));
    }

    pub(crate) fn close(&mut self, name: &str) {
        self.event(Event::End(BytesEnd::new(name)));
    }

    fn event(&mut self, e: Event<'_>) {
        self.0.write_event(e).expect("writing to a Vec cannot fail");
    }

    pub(crate) fn finish(mut self) -> String {
        self.event(Event::End(BytesEnd::new("xml")));
        String::from_utf8(self.0.into_inner()).expect("only UTF-8 was written")
    }
}

/// Removes the characters XML 1.0 forbids (most C0 controls, lone surrogates cannot occur in `str`).
fn xml_chars(text: &str) -> std::borrow::Cow<'_, str> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && !matches!(c, '\u{FFFE}' | '\u{FFFF}'))
    };
    // Bytes first (a safe-mode reply's ciphertext is a few kilobytes): no control byte, and no 0xEF, the
    // first byte of U+FFFE and U+FFFF (and of other characters, which the slower look below allows).
    let surely_allowed = |b: u8| (b >= b' ' && b != 0xEF) || matches!(b, b'\t' | b'\n' | b'\r');
    if text.bytes().all(surely_allowed) || text.chars().all(allowed) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.chars().filter(|&c| allowed(c)).collect())
    }
}

/// A piece of an answer as WeChat shows it: text, or a link from an `<a href>` in a text reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub href: Option<String>,
}

/// Splits a text reply the way WeChat renders it: `<a href="http…">label</a>` becomes a link, everything
/// else stays text (and is escaped by the template).
pub fn segments(text: &str) -> Vec<Segment> {
    let plain = |t: &str| Segment {
        text: t.to_owned(),
        href: None,
    };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("<a href=\"") {
        let after = &rest[start + 9..];
        let parsed = after.find("\">").and_then(|q| {
            let close = after[q + 2..].find("</a>")?;
            Some((&after[..q], &after[q + 2..q + 2 + close], q + 2 + close + 4))
        });
        match parsed {
            Some((href, label, used))
                if href.starts_with("http://") || href.starts_with("https://") =>
            {
                if start > 0 {
                    out.push(plain(&rest[..start]));
                }
                out.push(Segment {
                    text: label.to_owned(),
                    href: Some(href.to_owned()),
                });
                rest = &after[used..];
            }
            _ => {
                out.push(plain(&rest[..start + 9]));
                rest = after;
            }
        }
    }
    if !rest.is_empty() {
        out.push(plain(rest));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_text_replies_become_links_and_the_rest_stays_text() {
        let s = segments("看 <a href=\"https://x.test/\">门户</a> 吧 <b>");
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].href.as_deref(), Some("https://x.test/"));
        assert_eq!((s[0].text.as_str(), s[2].text.as_str()), ("看 ", " 吧 <b>"));
        let s = segments("<a href=\"javascript:alert(1)\">x</a>");
        assert!(s.iter().all(|seg| seg.href.is_none()));
        assert_eq!(
            s.iter().map(|seg| seg.text.as_str()).collect::<String>(),
            "<a href=\"javascript:alert(1)\">x</a>"
        );
    }
    use crate::wechat::XmlFields;

    #[test]
    fn only_the_characters_xml_forbids_are_dropped() {
        for kept in [
            "plain",
            "tab\tline\r\nend",
            "中文 😀",
            "\u{FFFD}\u{FEFF}\u{F000}",
            "",
        ] {
            assert!(matches!(xml_chars(kept), std::borrow::Cow::Borrowed(k) if k == kept));
        }
        assert_eq!(
            xml_chars("a\u{0}b\u{1F}c\u{FFFE}d\u{FFFF}e\u{FFFD}"),
            "abcde\u{FFFD}"
        );
    }

    #[test]
    fn text_that_would_break_cdata_round_trips() {
        let nasty = "a]]>b <b>&amp; 😀\nline2 ]]]]> \u{1}end";
        let xml = Reply::text(nasty).to_xml("o1", "gh_1", 1700000000);
        let f = XmlFields::parse(&xml).unwrap();
        assert_eq!(f.get("Content"), Some("a]]>b <b>&amp; 😀\nline2 ]]]]> end"));
        assert_eq!(f.get("ToUserName"), Some("o1"));
        assert_eq!(f.get("FromUserName"), Some("gh_1"));
        assert_eq!(f.get("CreateTime"), Some("1700000000"));
        assert_eq!(f.get("MsgType"), Some("text"));
    }

    #[test]
    fn every_reply_type_has_its_fields() {
        let news = Reply::News {
            articles: vec![Article {
                title: "T".into(),
                description: "D".into(),
                pic_url: "http://p".into(),
                url: "http://u".into(),
            }],
        };
        let f = XmlFields::parse(&news.to_xml("o", "gh", 1)).unwrap();
        assert_eq!(f.get("ArticleCount"), Some("1"));
        assert_eq!(f.get("Articles/item/Url"), Some("http://u"));

        let music = Reply::Music {
            title: "t".into(),
            description: "d".into(),
            music_url: "m".into(),
            hq_music_url: "h".into(),
            thumb_media_id: "th".into(),
        };
        let f = XmlFields::parse(&music.to_xml("o", "gh", 1)).unwrap();
        assert_eq!(f.get("Music/HQMusicUrl"), Some("h"));

        let video = Reply::Video {
            media_id: "m".into(),
            title: "t".into(),
            description: "d".into(),
        };
        assert_eq!(
            XmlFields::parse(&video.to_xml("o", "gh", 1))
                .unwrap()
                .get("Video/MediaId"),
            Some("m")
        );
        for (reply, path) in [
            (
                Reply::Image {
                    media_id: "i".into(),
                },
                "Image/MediaId",
            ),
            (
                Reply::Voice {
                    media_id: "v".into(),
                },
                "Voice/MediaId",
            ),
        ] {
            assert!(
                XmlFields::parse(&reply.to_xml("o", "gh", 1))
                    .unwrap()
                    .get(path)
                    .is_some()
            );
        }
        let transfer = Reply::TransferCustomerService.to_xml("o", "gh", 1);
        assert_eq!(
            XmlFields::parse(&transfer).unwrap().get("MsgType"),
            Some("transfer_customer_service")
        );
    }
}
