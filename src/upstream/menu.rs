//! The custom menu (自定义菜单): `menu/create`'s shape, WeChat's limits checked before anything is sent,
//! and the answer of `get_current_selfmenu_info` read back into the same shape.

use serde::{Deserialize, Serialize};

/// At most 3 buttons in the bar, 5 under each.
pub(crate) const MAX_BUTTONS: usize = 3;
pub(crate) const MAX_SUB_BUTTONS: usize = 5;
/// Names in bytes of UTF-8 (a Chinese character is 3): 16 in the bar, 60 in a sub-menu.
pub(crate) const MAX_NAME: usize = 16;
pub(crate) const MAX_SUB_NAME: usize = 60;
pub(crate) const MAX_KEY: usize = 128;
pub(crate) const MAX_URL: usize = 1024;

/// The button types wxportal can create, with what each needs and a name for the operator.
pub(crate) const TYPES: [(&str, &str); 9] = [
    ("click", "点击推事件（回复规则）"),
    ("view", "跳转网页"),
    ("miniprogram", "打开小程序"),
    ("scancode_push", "扫码"),
    ("scancode_waitmsg", "扫码并等待回复"),
    ("pic_sysphoto", "拍照发图"),
    ("pic_photo_or_album", "拍照或相册发图"),
    ("pic_weixin", "微信相册发图"),
    ("location_select", "发送位置"),
];

/// A menu, as `menu/create` takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Menu {
    #[serde(default)]
    pub button: Vec<Button>,
}

/// A button of the bar or of a sub-menu. A bar button with a sub-menu has no type of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagepath: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_button: Vec<Button>,
}

impl Menu {
    /// Every way the menu breaks WeChat's rules, in words an operator understands; empty when it can
    /// be sent.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.button.is_empty() {
            problems.push("The menu has no buttons: add at least one (or delete the menu).".into());
        }
        if self.button.len() > MAX_BUTTONS {
            problems.push(format!(
                "The menu has {} buttons; WeChat allows {MAX_BUTTONS}.",
                self.button.len()
            ));
        }
        for (i, button) in self.button.iter().enumerate() {
            let place = format!("Button {}", i + 1);
            check_name(&mut problems, &place, &button.name, MAX_NAME);
            if button.sub_button.is_empty() {
                check_action(&mut problems, &place, button);
                continue;
            }
            if button.kind.is_some() {
                problems.push(format!(
                    "{place} opens a sub-menu, so it cannot have an action of its own."
                ));
            }
            if button.sub_button.len() > MAX_SUB_BUTTONS {
                problems.push(format!(
                    "{place} has {} sub-buttons; WeChat allows {MAX_SUB_BUTTONS}.",
                    button.sub_button.len()
                ));
            }
            for (j, sub) in button.sub_button.iter().enumerate() {
                let place = format!("Button {}.{}", i + 1, j + 1);
                check_name(&mut problems, &place, &sub.name, MAX_SUB_NAME);
                if !sub.sub_button.is_empty() {
                    problems.push(format!("{place}: sub-menus cannot nest."));
                }
                check_action(&mut problems, &place, sub);
            }
        }
        problems
    }

    /// Every CLICK key in the menu, with the button's name.
    pub fn click_keys(&self) -> Vec<(&str, &str)> {
        self.button
            .iter()
            .flat_map(|b| std::iter::once(b).chain(&b.sub_button))
            .filter(|b| b.kind.as_deref() == Some("click"))
            .filter_map(|b| Some((b.key.as_deref()?, b.name.as_str())))
            .collect()
    }
}

fn check_name(problems: &mut Vec<String>, place: &str, name: &str, max: usize) {
    if name.trim().is_empty() {
        problems.push(format!("{place} has no name."));
    } else if name.len() > max {
        problems.push(format!(
            "{place} 「{name}」: the name is {} bytes; WeChat allows {max} (a Chinese character is 3).",
            name.len()
        ));
    }
}

fn check_action(problems: &mut Vec<String>, place: &str, b: &Button) {
    let Some(kind) = b.kind.as_deref() else {
        problems.push(format!("{place} has neither a type nor a sub-menu."));
        return;
    };
    let filled = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
    let check_url = |problems: &mut Vec<String>, what: &str| match b.url.as_deref() {
        Some(url) if url.len() > MAX_URL => problems.push(format!(
            "{place}: the {what} is {} bytes; WeChat allows {MAX_URL}.",
            url.len()
        )),
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {}
        _ => problems.push(format!(
            "{place}: the {what} must be a full http:// or https:// address."
        )),
    };
    match kind {
        "view" => check_url(problems, "web address"),
        "miniprogram" => {
            if !filled(&b.appid) {
                problems.push(format!("{place}: a mini program button needs its AppID."));
            }
            if !filled(&b.pagepath) {
                problems.push(format!(
                    "{place}: a mini program button needs its page path."
                ));
            }
            check_url(
                problems,
                "fallback web address (for clients without mini programs)",
            );
        }
        k if TYPES.iter().any(|(t, _)| *t == k) => match b.key.as_deref() {
            Some(key) if key.len() > MAX_KEY => problems.push(format!(
                "{place}: the key is {} bytes; WeChat allows {MAX_KEY}.",
                key.len()
            )),
            Some(key) if !key.trim().is_empty() => {}
            _ => problems.push(format!("{place}: a {kind} button needs a key.")),
        },
        other => problems.push(format!(
            "{place}: the type {other:?} is not one wxportal can create."
        )),
    }
}

/// What `get_current_selfmenu_info` answers.
#[derive(Debug, Clone, Deserialize)]
pub struct CurrentMenu {
    #[serde(default)]
    pub is_menu_open: i64,
    #[serde(default)]
    pub selfmenu_info: Option<CurrentButtons>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CurrentButtons {
    #[serde(default)]
    pub button: Vec<CurrentButton>,
}

/// A button as `get_current_selfmenu_info` shows it: sub-buttons under `sub_button.list`, and types set
/// in WeChat's own console (`text`, `img`, `news`, …) with a `value`.
#[derive(Debug, Clone, Deserialize)]
pub struct CurrentButton {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub appid: Option<String>,
    #[serde(default)]
    pub pagepath: Option<String>,
    #[serde(default)]
    pub sub_button: Option<SubButtons>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubButtons {
    #[serde(default)]
    pub list: Vec<CurrentButton>,
}

impl CurrentMenu {
    /// The current menu in `menu/create`'s shape (console-only types keep their type and are refused
    /// by [`Menu::problems`] if pushed back unchanged).
    pub fn to_menu(&self) -> Menu {
        fn convert(b: &CurrentButton) -> Button {
            Button {
                name: b.name.clone(),
                kind: b.kind.clone(),
                key: b.key.clone(),
                url: b.url.clone(),
                appid: b.appid.clone(),
                pagepath: b.pagepath.clone(),
                sub_button: b
                    .sub_button
                    .as_ref()
                    .map(|s| s.list.iter().map(convert).collect())
                    .unwrap_or_default(),
            }
        }
        Menu {
            button: self
                .selfmenu_info
                .as_ref()
                .map(|info| info.button.iter().map(convert).collect())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(name: &str, key: &str) -> Button {
        Button {
            name: name.into(),
            kind: Some("click".into()),
            key: Some(key.into()),
            ..Button::default()
        }
    }

    #[test]
    fn a_full_valid_menu_has_no_problems() {
        let menu: Menu = serde_json::from_str(
            r#"{"button":[
                {"type":"click","name":"今日歌曲","key":"V1001_TODAY_MUSIC"},
                {"name":"菜单","sub_button":[
                    {"type":"view","name":"搜索","url":"http://www.soso.com/"},
                    {"type":"miniprogram","name":"wxa","url":"http://mp.weixin.qq.com","appid":"wx286b93c14bbf93aa","pagepath":"pages/lunar/index"},
                    {"type":"scancode_push","name":"扫码","key":"rselfmenu_0_1"},
                    {"type":"pic_weixin","name":"相册","key":"rselfmenu_1_2"},
                    {"type":"location_select","name":"发送位置","key":"rselfmenu_2_0"}]},
                {"type":"click","name":"赞一下我们","key":"V1001_GOOD"}]}"#,
        )
        .unwrap();
        assert_eq!(menu.problems(), Vec::<String>::new());
        assert_eq!(
            menu.click_keys(),
            vec![
                ("V1001_TODAY_MUSIC", "今日歌曲"),
                ("V1001_GOOD", "赞一下我们")
            ]
        );
        // The JSON sent is menu/create's: no empty fields.
        let sent = serde_json::to_string(&menu.button[0]).unwrap();
        assert_eq!(
            sent,
            r#"{"name":"今日歌曲","type":"click","key":"V1001_TODAY_MUSIC"}"#
        );
    }

    #[test]
    fn every_broken_rule_is_named() {
        let mut top = click("一二三四五六", "k"); // 18 bytes
        top.key = Some("k".repeat(129));
        let mut menu = Menu {
            button: vec![
                top,
                Button {
                    name: "子".into(),
                    sub_button: (0..6).map(|i| click("x", &format!("k{i}"))).collect(),
                    ..Button::default()
                },
                Button {
                    name: "网页".into(),
                    kind: Some("view".into()),
                    url: Some("javascript:alert(1)".into()),
                    ..Button::default()
                },
            ],
        };
        menu.button.push(click("four", "k4"));
        let problems = menu.problems().join("\n");
        for expected in [
            "4 buttons; WeChat allows 3",
            "Button 1 「一二三四五六」: the name is 18 bytes",
            "Button 1: the key is 129 bytes",
            "Button 2 has 6 sub-buttons",
            "Button 3: the web address must be a full http",
        ] {
            assert!(problems.contains(expected), "{expected} in {problems}");
        }
        let empty = Menu::default().problems();
        assert!(empty[0].contains("no buttons"));
        let bad = Menu {
            button: vec![Button {
                name: "mp".into(),
                kind: Some("miniprogram".into()),
                ..Button::default()
            }],
        };
        assert_eq!(bad.problems().len(), 3, "{:?}", bad.problems());
    }

    #[test]
    fn the_current_menu_reads_back_into_the_create_shape() {
        let current: CurrentMenu = serde_json::from_str(
            r#"{"is_menu_open":1,"selfmenu_info":{"button":[
                {"type":"click","name":"今日歌曲","key":"V1001_TODAY_MUSIC"},
                {"name":"菜单","sub_button":{"list":[{"type":"view","name":"搜索","url":"http://www.soso.com/"}]}}]}}"#,
        )
        .unwrap();
        let menu = current.to_menu();
        assert_eq!(
            menu.button[1].sub_button[0].url.as_deref(),
            Some("http://www.soso.com/")
        );
        assert!(menu.problems().is_empty());
    }
}
