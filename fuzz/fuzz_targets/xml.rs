//! The inbound XML parser: any bytes give a message or an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxportal::wechat::{Inbound, XmlFields};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(fields) = XmlFields::parse(text) {
        let _ = fields.get("Encrypt");
        let _ = fields.to_json();
    }
    if let Ok(message) = Inbound::parse(text) {
        let _ = message.dedup_key();
        let _ = message.msg_type();
        let _ = message.event_name();
    }
});
