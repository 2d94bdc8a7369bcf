//! The other side of the webhook: what WeChat's server sends and how it judges the answer.
//!
//! Used by `wxportal send`, the demo's follower chat and the tests, so all three speak exactly what the
//! platform speaks.

use std::time::Duration;

use super::reply::XmlOut;
use super::{MessageCrypto, MessageMode, XmlFields, signature};

/// WeChat gives up on an answer after this long and retries.
pub(crate) const WECHAT_TIMEOUT: Duration = Duration::from_secs(5);

/// A signed request ready to send: its query string pairs and XML body.
#[derive(Debug, Clone)]
pub struct SignedPush {
    pub query: Vec<(&'static str, String)>,
    pub body: String,
    /// The plaintext message XML inside, whatever the mode.
    pub plaintext: String,
}

impl SignedPush {
    /// `url?query` with every value percent-encoded.
    pub fn url(&self, base: &str) -> String {
        let query: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencoding::encode(v)))
            .collect();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}{}", query.join("&"))
    }
}

/// A message as WeChat would push it: the envelope plus the type's own fields, in order.
#[derive(Debug, Clone)]
pub struct Push {
    pub to: String,
    pub from: String,
    pub create_time: i64,
    pub msg_type: String,
    /// `(element, text)`; a `/` in the element nests it (`ScanCodeInfo/ScanType`).
    pub fields: Vec<(String, String)>,
}

impl Push {
    /// The plaintext XML of this message.
    pub fn to_xml(&self) -> String {
        let mut x = XmlOut::new();
        x.cdata("ToUserName", &self.to);
        self.write_after_to(&mut x);
        x.finish()
    }

    /// Every element after `ToUserName`.
    fn write_after_to(&self, x: &mut XmlOut) {
        x.cdata("FromUserName", &self.from);
        x.number("CreateTime", self.create_time);
        x.cdata("MsgType", &self.msg_type);
        let mut open: Vec<&str> = Vec::new();
        for (name, value) in &self.fields {
            let parts: Vec<&str> = name.split('/').collect();
            let (parents, leaf) = parts.split_at(parts.len() - 1);
            // Nested groups are written as start/end pairs around consecutive fields sharing a parent.
            while !parents.starts_with(&open) {
                let closing = open.pop().expect("non-empty");
                x.close(closing);
            }
            for p in &parents[open.len()..] {
                x.open(p);
                open.push(p);
            }
            if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
                x.text(leaf[0], value);
            } else {
                x.cdata(leaf[0], value);
            }
        }
        while let Some(closing) = open.pop() {
            x.close(closing);
        }
    }

    /// Signs (and in compat/safe mode encrypts) the message, with the given timestamp and nonce.
    pub fn sign(
        &self,
        token: &str,
        mode: MessageMode,
        crypto: Option<&MessageCrypto>,
        timestamp: &str,
        nonce: &str,
    ) -> SignedPush {
        let plaintext = self.to_xml();
        let mut query = vec![
            ("signature", signature::sign(&[token, timestamp, nonce])),
            ("timestamp", timestamp.to_owned()),
            ("nonce", nonce.to_owned()),
            ("openid", self.from.clone()),
        ];
        let body = match (mode, crypto) {
            (MessageMode::Plain, _) | (_, None) => plaintext.clone(),
            (mode, Some(crypto)) => {
                let encrypt = crypto.encrypt(&plaintext);
                query.push(("encrypt_type", "aes".to_owned()));
                query.push((
                    "msg_signature",
                    signature::sign(&[token, timestamp, nonce, &encrypt]),
                ));
                let mut x = XmlOut::new();
                x.cdata("ToUserName", &self.to);
                if mode == MessageMode::Compat {
                    // Compatible mode carries the plaintext fields beside the ciphertext.
                    self.write_after_to(&mut x);
                }
                x.cdata("Encrypt", &encrypt);
                x.finish()
            }
        };
        SignedPush {
            query,
            body,
            plaintext,
        }
    }
}

/// `query` (`k=v&…`) with its `signature`, and `msg_signature` over `body`'s `<Encrypt>`, replaced by
/// the correct ones for its timestamp and nonce: to replay recorded or mutated requests (the fuzz
/// harness, its regression tests) past the signature check.
pub fn resign_query(token: &str, query: &str, body: &str) -> String {
    let pairs: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| *n == k).map_or("", |(_, v)| *v);
    let (timestamp, nonce) = (get("timestamp"), get("nonce"));
    let encrypt = XmlFields::parse(body)
        .ok()
        .and_then(|f| f.get("Encrypt").map(str::to_owned))
        .unwrap_or_default();
    pairs
        .iter()
        .map(|(k, v)| match *k {
            "signature" => format!("{k}={}", signature::sign(&[token, timestamp, nonce])),
            "msg_signature" => format!(
                "{k}={}",
                signature::sign(&[token, timestamp, nonce, &encrypt])
            ),
            _ => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A URL-verification request: the query pairs for `GET`.
pub fn verification_query(
    token: &str,
    timestamp: &str,
    nonce: &str,
    echostr: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("signature", signature::sign(&[token, timestamp, nonce])),
        ("echostr", echostr.to_owned()),
        ("timestamp", timestamp.to_owned()),
        ("nonce", nonce.to_owned()),
    ]
}

/// What WeChat makes of an answer.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// The reply's fields, when there was one and it could be read.
    pub reply: Option<XmlFields>,
    /// The decrypted reply XML, for an encrypted answer.
    pub decrypted: Option<String>,
    /// Each reason WeChat would not accept the answer, in plain words. Empty means accepted.
    pub problems: Vec<String>,
    /// True when the answer was `success` or empty: accepted, nothing shown to the follower.
    pub silent: bool,
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Judges an answer the way WeChat does: status, timing, `success`, signature, decryption, XML shape.
pub fn check_reply(
    push: &Push,
    token: &str,
    crypto: Option<&MessageCrypto>,
    status: u16,
    elapsed: Duration,
    body: &str,
) -> Verdict {
    let mut v = Verdict::default();
    if elapsed > WECHAT_TIMEOUT {
        v.problems.push(format!(
            "the answer took {:.1} s; WeChat waits 5 s, then retries and the follower sees \"该公众号暂时无法提供服务\"",
            elapsed.as_secs_f64()
        ));
    }
    if status != 200 {
        v.problems.push(format!(
            "HTTP status {status}: WeChat needs 200 (a 415 here is the classic Content-Type mistake, a 403 a Token mismatch)"
        ));
        return v;
    }
    let trimmed = body.trim();
    if trimmed.is_empty() || trimmed == "success" {
        v.silent = true;
        return v;
    }
    let outer = match XmlFields::parse(trimmed) {
        Ok(f) => f,
        Err(e) => {
            v.problems.push(format!(
                "the answer is neither `success` nor valid XML ({e}); the follower sees \"该公众号暂时无法提供服务\""
            ));
            return v;
        }
    };
    let inner = match (outer.get("Encrypt"), crypto) {
        (Some(encrypt), Some(crypto)) => {
            let (ts, nonce, sig) = (
                outer.get("TimeStamp").unwrap_or_default(),
                outer.get("Nonce").unwrap_or_default(),
                outer.get("MsgSignature").unwrap_or_default(),
            );
            if ts.is_empty() || nonce.is_empty() || sig.is_empty() {
                v.problems
                    .push("the encrypted answer lacks TimeStamp, Nonce or MsgSignature".into());
            } else if !signature::verify(sig, &[token, ts, nonce, encrypt]) {
                v.problems.push(
                    "MsgSignature of the encrypted answer does not match (wrong Token?)".into(),
                );
            }
            match crypto.decrypt(encrypt) {
                Ok(xml) => match XmlFields::parse(&xml) {
                    Ok(f) => {
                        v.decrypted = Some(xml);
                        f
                    }
                    Err(e) => {
                        v.problems
                            .push(format!("the decrypted answer is not valid XML ({e})"));
                        return v;
                    }
                },
                Err(e) => {
                    v.problems.push(format!(
                        "the encrypted answer cannot be decrypted with this EncodingAESKey and AppID ({e})"
                    ));
                    return v;
                }
            }
        }
        (Some(_), None) => {
            v.problems.push(
                "the answer is encrypted but no --aes-key/--appid was given to check it".into(),
            );
            return v;
        }
        (None, _) => {
            if crypto.is_some() {
                v.problems.push(
                    "the request was encrypted but the answer is plaintext: WeChat expects an encrypted answer"
                        .into(),
                );
            }
            outer
        }
    };
    check_reply_fields(push, &inner, &mut v.problems);
    v.reply = Some(inner);
    v
}

fn check_reply_fields(push: &Push, f: &XmlFields, problems: &mut Vec<String>) {
    if f.get("ToUserName") != Some(push.from.as_str()) {
        problems.push(format!(
            "ToUserName is {:?}; it must be the follower's OpenID {:?} (From and To swapped)",
            f.get("ToUserName").unwrap_or_default(),
            push.from
        ));
    }
    if f.get("FromUserName") != Some(push.to.as_str()) {
        problems.push(format!(
            "FromUserName is {:?}; it must be the account id {:?} (From and To swapped)",
            f.get("FromUserName").unwrap_or_default(),
            push.to
        ));
    }
    if f.get("CreateTime")
        .and_then(|t| t.parse::<i64>().ok())
        .is_none()
    {
        problems.push("CreateTime is missing or not an integer".into());
    }
    let required: &[&str] = match f.get("MsgType").unwrap_or_default() {
        "text" => &["Content"],
        "image" => &["Image/MediaId"],
        "voice" => &["Voice/MediaId"],
        "video" => &["Video/MediaId"],
        "music" => &["Music/ThumbMediaId"],
        "news" => &["ArticleCount", "Articles/item/Title", "Articles/item/Url"],
        "transfer_customer_service" => &[],
        other => {
            problems.push(format!(
                "MsgType {other:?} is not a passive-reply type WeChat knows"
            ));
            &[]
        }
    };
    for field in required {
        if f.get(field).is_none() {
            problems.push(format!("the reply lacks <{field}>"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::{AesKey, Inbound, MessageKind, Reply};

    fn push() -> Push {
        Push {
            to: "gh_1".into(),
            from: "o1".into(),
            create_time: 1_700_000_000,
            msg_type: "event".into(),
            fields: vec![
                ("Event".into(), "scancode_push".into()),
                ("EventKey".into(), "k".into()),
                ("ScanCodeInfo/ScanType".into(), "qrcode".into()),
                ("ScanCodeInfo/ScanResult".into(), "r".into()),
            ],
        }
    }

    #[test]
    fn nested_fields_are_written_as_nested_elements() {
        let m = Inbound::parse(&push().to_xml()).unwrap();
        assert_eq!(m.fields.get("ScanCodeInfo/ScanResult"), Some("r"));
        assert!(matches!(m.kind, MessageKind::Event(_)));
    }

    #[test]
    fn a_correct_encrypted_reply_is_accepted_and_a_swapped_one_is_not() {
        let crypto = MessageCrypto::new(
            AesKey::from_encoding_aes_key(&"A".repeat(43)).unwrap(),
            "wx134c8103faa5a59e",
        );
        let p = push();
        let good = Reply::text("hi").to_xml("o1", "gh_1", 1);
        let enc = crypto.encrypt(&good);
        let body = super::super::reply::encrypted_envelope(
            &enc,
            &signature::sign(&["tok", "1", "n", &enc]),
            "1",
            "n",
        );
        let v = check_reply(
            &p,
            "tok",
            Some(&crypto),
            200,
            Duration::from_millis(3),
            &body,
        );
        assert!(v.accepted(), "{:?}", v.problems);
        let swapped = Reply::text("hi").to_xml("gh_1", "o1", 1);
        let v = check_reply(&p, "tok", None, 200, Duration::from_millis(3), &swapped);
        assert_eq!(v.problems.len(), 2, "{:?}", v.problems);
        let v = check_reply(&p, "tok", None, 415, Duration::from_millis(3), "");
        assert!(v.problems[0].contains("415"));
    }
}
