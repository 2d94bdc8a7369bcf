//! The mock WeChat the tests run: the demo's stand-in for `api.weixin.qq.com`
//! ([`wxportal::demo::wechat::FakeWeChat`]) on its own loopback port, where every OpenID is a follower
//! with a profile full of markup, CJK and emoji (and who left, if the OpenID starts with `oGone`).

use std::ops::Deref;
use std::sync::Arc;

use serde_json::json;
use wxportal::demo::wechat::{FakeWeChat, Follower};

pub use wxportal::demo::wechat::Fault as Scripted;

use crate::helpers::APPID;

pub const APPSECRET: &str = "0123456789abcdef0123456789abcdef";

/// The running mock: its base URL, and the fake's controls and counters through `Deref`.
#[derive(Clone)]
pub struct MockWeChat {
    pub base: String,
    wechat: FakeWeChat,
}

impl Deref for MockWeChat {
    type Target = FakeWeChat;

    fn deref(&self) -> &FakeWeChat {
        &self.wechat
    }
}

fn follower(openid: &str) -> Option<Follower> {
    Some(Follower {
        unionid: None,
        profile: json!({
            "nickname": format!("<script>alert(1)</script>小明🐼 {openid}"),
            "sex": 1,
            "province": "广东",
            "city": "深圳",
            "country": "中国",
            "headimgurl": "https://thirdwx.qlogo.cn/mmopen/test/132",
            "privilege": ["chinaunicom"],
            "unionid": "uUnion1",
        }),
        info: json!({
            // An OpenID starting oGone belongs to someone who left (template sends get 43004).
            "subscribe": i32::from(!openid.starts_with("oGone")),
            "language": "zh_CN",
            "subscribe_time": 1_700_000_000,
            "unionid": format!("uInfo{openid}"),
            "remark": "VIP <b>",
            "groupid": 0,
            "tagid_list": [128, 2],
            "subscribe_scene": "ADD_SCENE_QR_CODE",
        }),
    })
}

impl MockWeChat {
    pub async fn start() -> Self {
        let wechat = FakeWeChat::new(APPID, Some(APPSECRET), Arc::new(follower));
        let base = wechat.serve().await.unwrap();
        Self { base, wechat }
    }

    /// A code WeChat would hand to the callback after `openid` consented to `scope`.
    pub fn issue_code(&self, openid: &str, scope: &str) -> String {
        self.wechat.issue_code(openid, scope, false)
    }

    /// A code for a Moments snapshot visitor (`is_snapshotuser: 1`).
    pub fn issue_snapshot_code(&self) -> String {
        self.wechat
            .issue_code("oSnapshotVirtual", "snsapi_base", true)
    }
}
