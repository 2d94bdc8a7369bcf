//! Reading WeChat's XML safely: a flat list of `path → text` pairs under the root `<xml>` element.
//!
//! A DOCTYPE is refused outright, so no entity can be declared or expanded; only the five predefined
//! entities and character references are understood.

use quick_xml::events::Event as XmlEvent;
use quick_xml::reader::Reader;

/// Deeper nesting than WeChat ever sends (`SendPicsInfo/PicList/item/PicMd5Sum` is the deepest).
const MAX_DEPTH: usize = 8;
/// More elements than any WeChat message has; a bound on the work a hostile body can cause.
const MAX_ELEMENTS: usize = 512;

/// Why a body is not acceptable WeChat XML.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("XML with a DOCTYPE or entity declarations is refused")]
    Doctype,
    #[error("unknown entity reference &{0};")]
    Entity(String),
    #[error("the root element must be <xml>")]
    Root,
    #[error("XML nested deeper than {MAX_DEPTH} levels or more than {MAX_ELEMENTS} elements")]
    TooLarge,
    #[error("malformed XML: {0}")]
    Syntax(String),
    #[error("missing element <{0}>")]
    Missing(&'static str),
}

/// The text of every element under `<xml>`, by slash-separated path, in document order.
///
/// Repeated paths (`PicList/item/PicMd5Sum`) keep every occurrence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmlFields(Vec<(String, String)>);

impl XmlFields {
    /// The text of the first element at `path`, if present.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, v)| v.as_str())
    }

    /// The text at `path`, or an error naming the missing element.
    pub(crate) fn require(&self, path: &'static str) -> Result<&str, XmlError> {
        self.get(path).ok_or(XmlError::Missing(path))
    }

    /// The text at `path`, or an empty string.
    pub fn text(&self, path: &str) -> String {
        self.get(path).unwrap_or_default().to_owned()
    }

    /// Every `(path, text)` pair in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(p, v)| (p.as_str(), v.as_str()))
    }

    /// The pairs as a JSON object; a repeated path becomes an array.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (path, value) in &self.0 {
            match map.get_mut(path) {
                None => {
                    map.insert(path.clone(), value.clone().into());
                }
                Some(serde_json::Value::Array(items)) => items.push(value.clone().into()),
                Some(existing) => {
                    let first = existing.take();
                    *existing = serde_json::Value::Array(vec![first, value.clone().into()]);
                }
            }
        }
        serde_json::Value::Object(map)
    }

    /// Parses a WeChat XML document.
    pub fn parse(body: &str) -> Result<Self, XmlError> {
        let mut reader = Reader::from_str(body);
        reader.config_mut().check_end_names = true;
        let mut fields = Vec::new();
        // Open elements with whether each has child elements (only leaves carry text).
        let mut stack: Vec<(String, bool)> = Vec::new();
        let mut text = String::new();
        let mut seen_root = false;
        let mut elements = 0usize;
        loop {
            let event = reader
                .read_event()
                .map_err(|e| XmlError::Syntax(e.to_string()))?;
            match event {
                XmlEvent::DocType(_) => return Err(XmlError::Doctype),
                XmlEvent::Start(start) => {
                    let name = start.name().as_ref().to_owned();
                    if stack.is_empty() {
                        if seen_root || name != "xml" {
                            return Err(XmlError::Root);
                        }
                        seen_root = true;
                    }
                    elements += 1;
                    if stack.len() >= MAX_DEPTH || elements > MAX_ELEMENTS {
                        return Err(XmlError::TooLarge);
                    }
                    if let Some(parent) = stack.last_mut() {
                        parent.1 = true;
                    }
                    stack.push((name, false));
                    text.clear();
                }
                XmlEvent::Empty(start) => {
                    let name = start.name().as_ref().to_owned();
                    if stack.is_empty() {
                        return Err(XmlError::Root);
                    }
                    elements += 1;
                    if elements > MAX_ELEMENTS {
                        return Err(XmlError::TooLarge);
                    }
                    if let Some(parent) = stack.last_mut() {
                        parent.1 = true;
                    }
                    fields.push((path(&stack[1..], &name), String::new()));
                }
                XmlEvent::End(_) => {
                    let (name, has_children) = stack.pop().ok_or(XmlError::Root)?;
                    if !stack.is_empty() && !has_children {
                        fields.push((path(&stack[1..], &name), std::mem::take(&mut text)));
                    }
                    text.clear();
                }
                XmlEvent::Text(t) => {
                    if stack.is_empty() {
                        if !t.xml10_content().trim().is_empty() {
                            return Err(XmlError::Root);
                        }
                        continue;
                    }
                    let content = t.xml10_content();
                    // XML 1.0 §2.4: "]]>" may not appear in character data. Typically a CDATA section
                    // that was not split by a naive writer; reading on would silently change the text.
                    if content.contains("]]>") {
                        return Err(XmlError::Syntax(
                            "\"]]>\" outside a CDATA section (an unsplit CDATA?)".into(),
                        ));
                    }
                    text.push_str(&content);
                }
                XmlEvent::CData(c) => {
                    if stack.is_empty() {
                        return Err(XmlError::Root);
                    }
                    text.push_str(&c.xml10_content());
                }
                XmlEvent::GeneralRef(r) => {
                    let name = AsRef::<str>::as_ref(&r).to_owned();
                    if r.is_char_ref() {
                        let ch = r
                            .resolve_char_ref()
                            .ok()
                            .flatten()
                            .ok_or(XmlError::Entity(name))?;
                        text.push(ch);
                    } else {
                        let ch = match name.as_str() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            _ => return Err(XmlError::Entity(name)),
                        };
                        text.push(ch);
                    }
                }
                XmlEvent::Decl(_) | XmlEvent::Comment(_) | XmlEvent::PI(_) => {}
                XmlEvent::Eof => break,
            }
        }
        if !seen_root || !stack.is_empty() {
            return Err(XmlError::Root);
        }
        Ok(Self(fields))
    }
}

fn path(parents: &[(String, bool)], name: &str) -> String {
    let mut p = String::new();
    for (parent, _) in parents {
        p.push_str(parent);
        p.push('/');
    }
    p.push_str(name);
    p
}

impl FromIterator<(String, String)> for XmlFields {
    fn from_iter<T: IntoIterator<Item = (String, String)>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cdata_text_and_numbers() {
        let f = XmlFields::parse(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><CreateTime>1348831860</CreateTime>\
             <Content><![CDATA[a ]]]]><![CDATA[> b]]></Content><Label>x &amp; y &#x4e2d;</Label></xml>",
        )
        .unwrap();
        assert_eq!(f.get("ToUserName"), Some("gh_1"));
        assert_eq!(f.get("CreateTime"), Some("1348831860"));
        assert_eq!(f.get("Content"), Some("a ]]> b"));
        assert_eq!(f.get("Label"), Some("x & y 中"));
    }

    #[test]
    fn nested_and_repeated_elements_keep_their_paths() {
        let f = XmlFields::parse(
            "<xml><SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>a</PicMd5Sum></item>\
             <item><PicMd5Sum>b</PicMd5Sum></item></PicList></SendPicsInfo><Empty/></xml>",
        )
        .unwrap();
        assert_eq!(f.get("SendPicsInfo/Count"), Some("2"));
        let sums: Vec<_> = f
            .iter()
            .filter(|(p, _)| *p == "SendPicsInfo/PicList/item/PicMd5Sum")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(sums, ["a", "b"]);
        assert_eq!(f.get("Empty"), Some(""));
        assert_eq!(
            f.to_json()["SendPicsInfo/PicList/item/PicMd5Sum"],
            serde_json::json!(["a", "b"])
        );
    }

    #[test]
    fn doctype_and_entities_are_refused() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><xml><a>&lol2;</a></xml>"#;
        assert_eq!(XmlFields::parse(bomb).unwrap_err(), XmlError::Doctype);
        let external = "<xml><a>&xxe;</a></xml>";
        assert_eq!(
            XmlFields::parse(external).unwrap_err(),
            XmlError::Entity("xxe".into())
        );
    }

    #[test]
    fn malformed_documents_are_errors() {
        for bad in [
            "",
            "hello",
            "<xml><a>1</b></xml>",
            "<xml><a>1</a>",
            "<root><a>1</a></root>",
            "<xml/>trailing<xml/>",
            "<xml></xml><xml></xml>",
            "<xml><a><![CDATA[a ]]> b]]></a></xml>",
        ] {
            assert!(XmlFields::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("<xml>{}{}</xml>", "<a>".repeat(20), "</a>".repeat(20));
        assert_eq!(XmlFields::parse(&deep).unwrap_err(), XmlError::TooLarge);
    }
}
