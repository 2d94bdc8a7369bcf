//! The demo's sample followers: who the consent page offers to sign in as and who the chat writes as,
//! and what the stand-in WeChat knows of them.

use std::sync::Arc;

use serde_json::json;

use super::wechat::{Directory, Follower};

/// A sample follower to authorize as.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SampleFollower {
    pub openid: &'static str,
    pub nickname: &'static str,
    pub sex: i64,
    pub country: &'static str,
    pub province: &'static str,
    pub city: &'static str,
    pub avatar: &'static str,
    pub unionid: Option<&'static str>,
}

/// CJK, emoji, markup that must stay text, and the post-2021 placeholder profile.
pub(crate) const FOLLOWERS: [SampleFollower; 4] = [
    SampleFollower {
        openid: "oDemo0000000000000xiaoming",
        nickname: "小明",
        sex: 1,
        country: "中国",
        province: "广东",
        city: "深圳",
        avatar: "avatar-1.svg",
        unionid: Some("uDemo00000000000000xiaoming"),
    },
    SampleFollower {
        openid: "oDemo00000000000000000panda",
        nickname: "熊猫🐼竹子🎋",
        sex: 2,
        country: "中国",
        province: "四川",
        city: "成都",
        avatar: "avatar-2.svg",
        unionid: None,
    },
    SampleFollower {
        openid: "oDemo0000000000000000script",
        nickname: "<script>alert('hi')</script>",
        sex: 0,
        country: "",
        province: "",
        city: "",
        avatar: "avatar-3.svg",
        unionid: None,
    },
    SampleFollower {
        openid: "oDemo000000000000placeholder",
        nickname: "微信用户",
        sex: 0,
        country: "",
        province: "",
        city: "",
        avatar: "avatar-4.svg",
        unionid: None,
    },
];

/// The sample followers as WeChat knows them; avatars are served by the portal at `public_url`.
pub fn directory(public_url: &str) -> Directory {
    let public_url = public_url.trim_end_matches('/').to_owned();
    Arc::new(move |openid: &str| {
        let f = FOLLOWERS.iter().find(|f| f.openid == openid)?;
        let mut profile = json!({
            "nickname": f.nickname,
            "sex": f.sex,
            "province": f.province,
            "city": f.city,
            "country": f.country,
            "headimgurl": format!("{public_url}/static/{}", f.avatar),
            "privilege": [],
        });
        let mut info = json!({
            "subscribe": 1,
            "language": "zh_CN",
            "subscribe_time": crate::time::unix_now(),
            "remark": "",
            "groupid": 0,
            "tagid_list": [],
            "subscribe_scene": "ADD_SCENE_QR_CODE",
        });
        if let Some(unionid) = f.unionid {
            profile["unionid"] = unionid.into();
            info["unionid"] = unionid.into();
        }
        Some(Follower {
            unionid: f.unionid.map(str::to_owned),
            profile,
            info,
        })
    })
}
